"""Speed of every sequence model: forward, forward + backward and one acting step, vs memax.

For each model in ``memorax.networks.SEQUENCE_MODELS`` (or those named with
``--models``) and each ``T`` in ``--steps``, times three jitted functions on a
``[batch, T, features]`` batch with episode resets inside the sequences
(about one every 200 steps):

- *fwd*: the whole-sequence call (associative or chunked scan, masked
  attention, or a ``lax.scan`` for nonlinear cells);
- *fwd+bwd*: the gradient of ``mean(outputs**2)`` with respect to the params;
- *act*: one acting step, ``T = 1`` with the carry threaded in and out (it
  does not depend on ``T``, so it is timed once per model, in the first row).

With ``--memax-path DIR`` (a folder holding ``memax`` 0.1.1 and its extra
pure-python dependencies, e.g. ``pip install --target DIR memax==0.1.1
equinox beartype --no-deps``), the same three functions are timed for the
memax (equinox) counterpart of each model, in the same process and in
alternating rounds, and the ratio ``memax time / Memorax time`` is printed
(> 1 means Memorax is faster). Models without a memax counterpart get
Memorax columns only; without ``--memax-path`` the table has Memorax columns
only. ``--step-by-step`` adds the old comparison column: fwd+bwd of the same
model stepped one step at a time in a ``lax.scan`` (how it runs when acting).

    .venv/bin/python benchmarks/sequence_models.py --memax-path /work/memax-target \\
        --steps 128 1024 4096 --long-models gru lstm slstm lru ffm linear_attention

Times are the median over ``--rounds`` rounds; in each round every function
of the row runs ``--calls`` times back to back (acting: 20x as many calls),
Memorax then memax, so slow drifts in machine load hit both libraries alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from memorax.networks import SEQUENCE_MODELS, SequenceModel

# Memorax registry name -> (memax equinox class name, constructor kwargs given
# the feature width). Sizes follow the Memorax registry entry where memax has
# the same knob (FFM memory 32 and context 4, attention context 64 with RoPE
# or ALiBi, DeltaProduct rank 2); S6 (vs Mamba) needs its state as wide as
# its input. Linear attention maps to FART, and the delta rules to memax's
# single-head versions, with a 16-wide key/value space (Memorax: 4 heads of
# 16 each).
MEMAX_COUNTERPARTS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "gru": ("GRU", lambda f: {"recurrent_size": f}),
    "lstm": ("LSTM", lambda f: {"recurrent_size": f}),
    "lru": ("LRU", lambda f: {"hidden_size": f, "recurrent_size": f}),
    "ffm": ("FFM", lambda f: {"hidden_size": f, "trace_size": 32, "context_size": 4}),
    "linear_attention": ("FART", lambda f: {"hidden_size": f, "recurrent_size": 16}),
    "mamba": ("S6", lambda f: {"hidden_size": f, "recurrent_size": f}),
    "deltanet": ("DeltaNet", lambda f: {"hidden_size": f, "recurrent_size": 16}),
    "gated_deltanet": ("GDN", lambda f: {"hidden_size": f, "recurrent_size": 16}),
    "delta_product": (
        "DeltaProduct",
        lambda f: {"hidden_size": f, "recurrent_size": 16, "rank": 2},
    ),
    "attention_rope": (
        "Attention",
        lambda f: {"recurrent_size": f, "window_size": 64, "positional_embedding": "rope"},
    ),
    "attention_alibi": (
        "Attention",
        lambda f: {"recurrent_size": f, "window_size": 64, "positional_embedding": "alibi"},
    ),
}


def memorax_functions(
    model: SequenceModel, inputs: jax.Array, starts: jax.Array, key: jax.Array
) -> dict[str, Callable[[], Any]]:
    """Jitted zero-argument fwd / fwd+bwd / act / step-by-step closures for a Memorax model."""
    batch = inputs.shape[0]
    carry = model.initialize_carry(batch)
    params = jax.jit(model.init)(key, inputs[:, :1], starts[:, :1], carry)

    @jax.jit
    def forward(params: Any, inputs: jax.Array, starts: jax.Array) -> Any:
        return model.apply(params, inputs, starts, carry)

    def loss(params: Any, inputs: jax.Array, starts: jax.Array) -> jax.Array:
        _, outputs = model.apply(params, inputs, starts, carry)
        return jnp.mean(outputs**2)

    grad = jax.jit(jax.grad(loss))

    @jax.jit
    def act(params: Any, carry: Any, x: jax.Array, start: jax.Array) -> Any:
        return model.apply(params, x, start, carry)

    def step_loss(params: Any, inputs: jax.Array, starts: jax.Array) -> jax.Array:
        def step(carry: Any, xs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            x, start = xs
            carry, y = model.apply(params, x[:, None], start[:, None], carry)
            return carry, y[:, 0]

        _, outputs = jax.lax.scan(
            step, carry, (jnp.swapaxes(inputs, 0, 1), jnp.swapaxes(starts, 0, 1))
        )
        return jnp.mean(outputs**2)

    step_grad = jax.jit(jax.grad(step_loss))
    x1, s1 = inputs[:, :1], starts[:, :1]
    return {
        "fwd": lambda: forward(params, inputs, starts),
        "fwd+bwd": lambda: grad(params, inputs, starts),
        "act": lambda: act(params, carry, x1, s1),
        "step": lambda: step_grad(params, inputs, starts),
    }


def memax_functions(
    name: str, features: int, inputs: jax.Array, starts: jax.Array, key: jax.Array
) -> dict[str, Callable[[], Any]]:
    """The same closures for the memax (equinox) counterpart of ``name``."""
    import equinox as eqx
    import memax.equinox.train_utils as memax_models

    class_name, kwargs = MEMAX_COUNTERPARTS[name]
    model = getattr(memax_models, class_name)(**kwargs(features), key=key)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    batch = inputs.shape[0]
    carry = memax_models.add_batch_dim(model.initialize_carry(), batch)

    def run(params: Any, carry: Any, inputs: jax.Array, starts: jax.Array) -> Any:
        model = eqx.combine(params, static)
        states, outputs = jax.vmap(model)(carry, (inputs, starts))
        return jax.tree.map(lambda s: s[:, -1], states), outputs

    forward = jax.jit(run)

    def loss(params: Any, inputs: jax.Array, starts: jax.Array) -> jax.Array:
        _, outputs = run(params, carry, inputs, starts)
        return jnp.mean(outputs**2)

    grad = jax.jit(jax.grad(loss))
    x1, s1 = inputs[:, :1], starts[:, :1]
    return {
        "fwd": lambda: forward(params, carry, inputs, starts),
        "fwd+bwd": lambda: grad(params, inputs, starts),
        "act": lambda: forward(params, carry, x1, s1),
    }


def time_rounds(functions: list[Callable[[], Any]], calls: list[int], rounds: int) -> list[float]:
    """Median seconds per call of each function, timed in alternating rounds."""
    for fn in functions:
        jax.block_until_ready(fn())  # compile and warm up
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(rounds):
        for index, (fn, count) in enumerate(zip(functions, calls, strict=True)):
            start = time.perf_counter()
            for _ in range(count):
                out = fn()
            jax.block_until_ready(out)
            samples[index].append((time.perf_counter() - start) / count)
    return [statistics.median(s) for s in samples]


def cell(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{1e3 * seconds:.3f}" if seconds < 1e-2 else f"{1e3 * seconds:.1f}"


def ratio(memax_s: float | None, memorax_s: float | None) -> str:
    if memax_s is None or memorax_s is None:
        return ""
    return f"{memax_s / memorax_s:.2f}"


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
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3, help="calls per round (acting: 20x)")
    parser.add_argument("--memax-path", default=None, help="folder holding memax 0.1.1")
    parser.add_argument(
        "--step-by-step", action="store_true", help="also time fwd+bwd stepped in a lax.scan"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.models) - set(SEQUENCE_MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {sorted(SEQUENCE_MODELS)}")
    with_memax = args.memax_path is not None
    if with_memax:
        sys.path.insert(0, args.memax_path)
        import memax  # noqa: F401  (fail early if the path is wrong)

    print(
        f"device: {jax.devices()[0].device_kind}, batch {args.batch}, "
        f"features {args.features}, jax {jax.__version__}, median of {args.rounds} rounds"
    )
    kinds = ["fwd", "fwd+bwd", "act"]
    header = ["model", "T"]
    for kind in kinds:
        header += [f"{kind} (ms)"] + ([f"memax {kind} (ms)", "ratio"] if with_memax else [])
    if args.step_by_step:
        header += ["step-by-step fwd+bwd (ms)", "parallel speed-up"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    acted: set[str] = set()
    for steps in args.steps:
        names = args.models
        if steps == max(args.steps) and args.long_models is not None:
            names = [name for name in names if name in args.long_models]
        for name in names:
            model = SEQUENCE_MODELS[name](args.features)
            key_inputs, key_starts, key_params = jax.random.split(jax.random.key(0), 3)
            inputs = jax.random.normal(key_inputs, (args.batch, steps, args.features))
            starts = jax.random.bernoulli(key_starts, 1 / 200, (args.batch, steps))
            ours = memorax_functions(model, inputs, starts, key_params)
            theirs = None
            if with_memax and name in MEMAX_COUNTERPARTS:
                theirs = memax_functions(name, args.features, inputs, starts, key_params)
            wanted = ["fwd", "fwd+bwd"] + (["act"] if name not in acted else [])
            acted.add(name)
            functions, calls, labels = [], [], []
            for kind in wanted:
                count = args.calls * (20 if kind == "act" else 1)
                for library, fns in (("memorax", ours), ("memax", theirs)):
                    if fns is not None:
                        functions.append(fns[kind])
                        calls.append(count)
                        labels.append((library, kind))
            if args.step_by_step:
                functions.append(ours["step"])
                calls.append(args.calls)
                labels.append(("memorax", "step"))
            times = dict(zip(labels, time_rounds(functions, calls, args.rounds), strict=True))
            row = [name, str(steps)]
            for kind in kinds:
                mine = times.get(("memorax", kind))
                row.append(cell(mine))
                if with_memax:
                    other = times.get(("memax", kind))
                    row += [cell(other), ratio(other, mine)]
            if args.step_by_step:
                step_s = times[("memorax", "step")]
                row += [cell(step_s), f"{step_s / times[('memorax', 'fwd+bwd')]:.1f}x"]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
