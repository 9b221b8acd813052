"""Conversion of gymnasium spaces (also PufferLib's and ALE's) into Memorax spaces.

JAX runs without 64-bit types by default, so 64-bit dtypes become their
32-bit counterparts; the bridge casts the host arrays when it writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memorax.envs import Box, Discrete, MultiDiscrete, Space

__all__ = ["convert_space", "jax_dtype"]

_NARROWED = {
    np.dtype(np.float64): np.dtype(np.float32),
    np.dtype(np.int64): np.dtype(np.int32),
    np.dtype(np.uint64): np.dtype(np.uint32),
}


def jax_dtype(dtype: Any) -> np.dtype:
    """The dtype JAX holds a host array of ``dtype`` in (64-bit types narrowed to 32-bit)."""
    dtype = np.dtype(dtype)
    return _NARROWED.get(dtype, dtype)


def convert_space(space: Any, env_name: str, role: str) -> Space:
    """A Memorax space equal to a gymnasium ``Discrete``, ``MultiDiscrete`` or ``Box``.

    Args:
        space: the single-copy gymnasium space.
        env_name: ``"namespace::id"``, for messages.
        role: ``"observation"`` or ``"action"``, for messages.

    Raises:
        NotImplementedError: for other spaces (Dict, Tuple, Text, ...), naming
            the gymnasium wrapper that flattens them.
    """
    kind = type(space).__name__
    if kind == "Discrete":
        return Discrete(n=int(space.n), start=int(space.start))
    if kind == "MultiDiscrete":
        nvec = np.asarray(space.nvec)
        if nvec.ndim != 1 or np.any(np.asarray(space.start) != 0):
            raise NotImplementedError(
                f"{env_name}: {role} space {space} is not supported; Memorax's MultiDiscrete "
                "is one-dimensional and starts at 0."
            )
        return MultiDiscrete(nvec=tuple(int(n) for n in nvec))
    if kind == "Box":
        dtype = jax_dtype(space.dtype)
        return Box(
            low=np.asarray(space.low, np.float64),
            high=np.asarray(space.high, np.float64),
            shape=tuple(space.shape),
            dtype=dtype,
        )
    raise NotImplementedError(
        f"{env_name}: {role} space {space} is not supported; callback backends handle "
        "Discrete, MultiDiscrete and Box. Flatten it on the host first, e.g. with "
        "gymnasium.wrappers.FlattenObservation, passed through make(..., wrappers=[...])."
    )
