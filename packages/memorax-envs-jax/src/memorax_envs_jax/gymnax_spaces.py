"""Conversion of gymnax-style spaces (also used by craftax) into Memorax spaces."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from memorax.envs import Box, Discrete, MultiDiscrete, Space

__all__ = ["convert_space"]


def convert_space(space: Any) -> Space:
    """A Memorax space equal to a gymnax ``Discrete`` or ``Box`` space."""
    kind = type(space).__name__
    if kind == "Discrete":
        return Discrete(n=int(space.n), dtype=jnp.int32)
    if kind == "Box":
        dtype = jnp.dtype(space.dtype)
        if jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.dtype(jnp.float32)
        low = np.broadcast_to(np.asarray(space.low, np.float64), tuple(space.shape))
        high = np.broadcast_to(np.asarray(space.high, np.float64), tuple(space.shape))
        return Box(low=low, high=high, shape=tuple(space.shape), dtype=dtype)
    if kind == "MultiDiscrete":
        return MultiDiscrete(nvec=tuple(np.asarray(space.nvec).tolist()))
    raise NotImplementedError(
        f"Space {kind} is not supported yet; Memorax handles Discrete, Box and MultiDiscrete."
    )
