"""Bounded continuous actions: a squashed policy's ``(-1, 1)^A`` mapped onto a ``Box``.

Squashed policies (SAC's ``tanh`` Gaussian) act in ``(-1, 1)`` per action
dimension; the agent stores and learns from those values and only the env
sees them rescaled to the Box's ``[low, high]``, so the same network works
for any bounds.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs import Box

__all__ = ["box_action_dim", "scale_to_box"]


def box_action_dim(space: Box, owner: str) -> int:
    """Flat action size of a bounded float ``Box``; ``ValueError`` naming ``owner`` otherwise."""
    low, high = np.asarray(space.low_array), np.asarray(space.high_array)
    if not np.issubdtype(np.dtype(space.dtype), np.floating):
        raise ValueError(f"{owner} needs a float Box action space; got {space}.")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(
            f"{owner}'s squashed policy acts in [low, high], so every action bound must be "
            f"finite; got {space}. Wrap the env to rescale its actions to finite bounds."
        )
    return math.prod(space.shape)


def scale_to_box(action: jax.Array, space: Box) -> jax.Array:
    """``[B, A]`` actions in ``[-1, 1]`` -> ``[B, *space.shape]`` actions in ``[low, high]``.

    ``-1`` maps to ``low``, ``1`` to ``high``, linearly between; the result is
    clipped to the bounds so float rounding never leaves the space.
    """
    low = np.asarray(space.low_array, np.float32).reshape(-1)
    high = np.asarray(space.high_array, np.float32).reshape(-1)
    scaled = jnp.asarray(low) + (jnp.asarray(action, jnp.float32) + 1.0) * (0.5 * (high - low))
    scaled = jnp.clip(scaled, low, high)
    return scaled.reshape(scaled.shape[0], *space.shape)
