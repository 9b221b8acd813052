"""Small random draws on the CPU as straight-line code, so they do not slow the bridge.

On the CPU, JAX lowers every threefry hash (behind ``jax.random.split``,
``randint``, ``uniform``, ...) to an XLA while loop of five rounds, to keep
compile times down. In a loop body that also calls the host (every bridge
step), that small while loop made each step about 70 us slower for 8 CartPole
copies (measured: 158 against 90 us per step; the same draws outside the
bridge cost 4 us): XLA:CPU runs the loop beside the host call, and the call
then runs on a worker thread instead of the caller's (an epsilon-greedy action
drawn with ``randint`` halved the bridge's speed, issue 21).

:func:`install` registers, for the CPU only, JAX's own unrolled lowering (the
one it uses on GPUs and TPUs, so the random bits are identical) for draws of
at most :data:`MAX_UNROLLED_ELEMENTS` numbers; larger draws (permutations,
whole batches) keep the compact loop, so their compile time does not change.
Importing :mod:`memorax_envs_callback` installs it, once per process.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_UNROLLED_ELEMENTS", "install", "installed"]

MAX_UNROLLED_ELEMENTS = 64
"""Largest draw (hashed pairs of 32-bit words) lowered as straight-line code."""

_installed = False


def _threefry_module() -> Any:
    """Where this JAX keeps the threefry primitive and its two lowerings."""
    import importlib

    try:  # jax >= 0.7
        return importlib.import_module("jax._src.random.threefry2x32")
    except ImportError:  # jax 0.6
        return importlib.import_module("jax._src.prng")


def install() -> bool:
    """Lower small threefry draws on the CPU without a loop (idempotent).

    Returns:
        True if installed, False if this JAX does not have the private names it
        needs (then nothing changes: draws stay correct, only slower beside the
        bridge).
    """
    global _installed
    if _installed:
        return True
    try:
        from jax._src.interpreters import mlir

        module = _threefry_module()
        primitive = module.threefry2x32_p
        unrolled = module._threefry2x32_lowering_rule
        rolled = module._threefry2x32_cpu_lowering_rule
    except (ImportError, AttributeError):
        return False

    def lowering(ctx: Any, *args: Any) -> Any:
        small = math.prod(ctx.avals_out[0].shape) <= MAX_UNROLLED_ELEMENTS
        return (unrolled if small else rolled)(ctx, *args)

    mlir.register_lowering(primitive, lowering, platform="cpu")
    _installed = True
    return True


def installed() -> bool:
    """Whether :func:`install` has changed the CPU lowering in this process."""
    return _installed
