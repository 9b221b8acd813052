"""Training-mode speed of every sequence model: parallel form vs step-by-step scan.

For each model in ``memorax.networks.SEQUENCE_MODELS`` (or those named with
``--models``), times a jitted forward + backward pass over a
``[batch, T, features]`` batch two ways:

- *parallel*: the model's whole-sequence call (associative or chunked scan
  where the model has one);
- *step*: ``lax.scan`` over ``T`` calls with ``T = 1``, threading the carry,
  i.e. how the model runs when acting.

Both compute the same outputs (the property tests check it). Prints a
markdown table with the median time and the speed-up.

    python benchmarks/sequence_models.py --steps 128 1024 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from memorax.networks import SEQUENCE_MODELS, SequenceModel


def make_losses(
    model: SequenceModel, params: Any, inputs: jax.Array, starts: jax.Array
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    carry = model.initialize_carry(inputs.shape[0])

    def parallel_loss(params: Any) -> jax.Array:
        _, outputs = model.apply(params, inputs, starts, carry)
        return jnp.mean(outputs**2)

    def step_loss(params: Any) -> jax.Array:
        def step(carry: Any, xs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            x, start = xs
            carry, y = model.apply(params, x[:, None], start[:, None], carry)
            return carry, y[:, 0]

        _, outputs = jax.lax.scan(
            step, carry, (jnp.swapaxes(inputs, 0, 1), jnp.swapaxes(starts, 0, 1))
        )
        return jnp.mean(outputs**2)

    return jax.jit(jax.grad(parallel_loss)), jax.jit(jax.grad(step_loss))


def median_seconds(fn: Callable[[Any], Any], params: Any, repeats: int) -> float:
    jax.block_until_ready(fn(params))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(params))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(SEQUENCE_MODELS))
    parser.add_argument(
        "--long-models",
        nargs="*",
        default=None,
        help="models to run at the longest T (default: all of --models)",
    )
    parser.add_argument("--steps", nargs="*", type=int, default=[128, 1024])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    unknown = sorted(set(args.models) - set(SEQUENCE_MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {sorted(SEQUENCE_MODELS)}")

    print(f"device: {jax.devices()[0].device_kind}, batch {args.batch}, features {args.features}")
    print("| model | T | parallel (ms) | step-by-step (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for steps in args.steps:
        names = args.models
        if steps == max(args.steps) and args.long_models is not None:
            names = [name for name in names if name in args.long_models]
        for name in names:
            model = SEQUENCE_MODELS[name](args.features)
            key_inputs, key_starts, key_params = jax.random.split(jax.random.key(0), 3)
            inputs = jax.random.normal(key_inputs, (args.batch, steps, args.features))
            # Episodes of about 200 steps, so resets happen inside sequences.
            starts = jax.random.bernoulli(key_starts, 1 / 200, (args.batch, steps))
            carry = model.initialize_carry(args.batch)
            params = jax.jit(model.init)(key_params, inputs[:, :1], starts[:, :1], carry)
            parallel, step = make_losses(model, params, inputs, starts)
            parallel_s = median_seconds(parallel, params, args.repeats)
            step_s = median_seconds(step, params, args.repeats)
            print(
                f"| {name} | {steps} | {1e3 * parallel_s:.1f} | {1e3 * step_s:.1f} "
                f"| {step_s / parallel_s:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
