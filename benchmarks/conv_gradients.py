"""Gradient time of the Nature-DQN CNN with ``nn.Conv`` and with ``PatchConv`` (a benchmark).

Times ``jax.grad`` of a squared output over a batch of 84x84x4 uint8 frames,
once on its own and four times inside a ``lax.scan`` (where agents run their
updates). On XLA:CPU the scanned ``nn.Conv`` gradients run as naive loops.

    .venv/bin/python benchmarks/conv_gradients.py [--batch 256]
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks import PatchConv

LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))  # (features, kernel, stride)
SCANNED = 4


class NatureCNN(nn.Module):
    """The Nature-DQN convolutions, a 512-unit layer and a scalar output."""

    conv: type

    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:
        x = frames.astype(jnp.float32) / 255.0
        for i, (features, size, stride) in enumerate(LAYERS):
            conv = self.conv(features, (size, size), strides=(stride, stride), name=f"conv{i}")
            x = nn.relu(conv(x))
        x = nn.relu(nn.Dense(512)(x.reshape(x.shape[0], -1)))
        return nn.Dense(1)(x)[:, 0]


def seconds(function, *args) -> float:
    """Wall seconds of ``function(*args)`` after a warm-up call."""
    jax.block_until_ready(function(*args))
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="frames per gradient")
    args = parser.parse_args()
    shape = (SCANNED, args.batch, 84, 84, 4)
    frames = jax.random.randint(jax.random.key(0), shape, 0, 255).astype(jnp.uint8)
    print(f"jax {jax.__version__} on {jax.default_backend()}, load average "
          f"{os.getloadavg()[0]:.1f}; batch {args.batch}")  # fmt: skip
    print(f"| convolution | one gradient (s) | per gradient, {SCANNED} in a lax.scan (s) |")
    print("|---|---:|---:|")
    for label, conv in (
        ("flax.linen.Conv", partial(nn.Conv, padding="VALID")),
        ("memorax.networks.PatchConv", PatchConv),
    ):
        network = NatureCNN(conv)
        params = network.init(jax.random.key(1), frames[0, :1])

        def loss(params, frames, network=network):
            return jnp.mean(network.apply(params, frames) ** 2)

        def scanned(params, batches, loss=loss):
            def step(params, frames):
                grads = jax.grad(loss)(params, frames)
                return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), None

            return jax.lax.scan(step, params, batches)[0]

        once = seconds(jax.jit(jax.grad(loss)), params, frames[0])
        in_scan = seconds(jax.jit(scanned), params, frames) / SCANNED
        print(f"| {label} | {once:.2f} | {in_scan:.2f} |", flush=True)


if __name__ == "__main__":
    main()
