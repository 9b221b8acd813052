"""Validation of actions passed to ``Environment.step``.

Shape and dtype mistakes are caught while tracing, for free. Out-of-range
values can only be seen at run time: they are checked on the device and, only
when a bad value is present, a host callback raises
(:func:`memorax.envs.host_callbacks.raise_if`). Under ``jax.vmap`` the check
is folded over the whole batch so that a vmapped ``cond`` does not turn into a
callback on every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from memorax.envs.host_callbacks import raise_if
from memorax.envs.spaces import Box, Discrete, MultiDiscrete, Space

__all__ = ["InvalidActionError", "validate_action"]


class InvalidActionError(ValueError):
    """An action does not match the environment's action space."""


def validate_action(space: Space, action: Any, num_envs: int, env_name: str) -> jax.Array:
    """Checks a batched action against ``space`` and returns it in the space's dtype.

    Args:
        space: the single-env action space.
        action: ``[num_envs, *space.shape]``.
        num_envs: the environment's batch size.
        env_name: shown in error messages.

    Raises:
        InvalidActionError: at trace time for a wrong shape or dtype; at run
            time (inside a ``JaxRuntimeError`` when jitted) for a discrete
            action outside the space.
    """
    action = jnp.asarray(action)
    expected = (num_envs, *space.shape)
    if action.shape != expected:
        hint = ""
        if action.shape == tuple(space.shape):
            hint = " Did you forget the leading num_envs axis? Environments are batched."
        elif action.shape and action.shape[0] != num_envs:
            hint = (
                f" The leading axis is {action.shape[0]} but the env steps {num_envs} copies:"
                " check that the agent's num_envs matches make(..., num_envs=...)."
            )
        raise InvalidActionError(
            f"{env_name}: action has shape {action.shape}, expected {expected} "
            f"(num_envs={num_envs}, action space {space}).{hint}"
        )
    if isinstance(space, Discrete | MultiDiscrete):
        if not jnp.issubdtype(action.dtype, jnp.integer):
            raise InvalidActionError(
                f"{env_name}: discrete actions must be integers, got dtype {action.dtype}. "
                "Cast with action.astype(jnp.int32) or sample from a Categorical head."
            )
        high = space.n + space.start if isinstance(space, Discrete) else jnp.asarray(space.nvec)
        low = space.start if isinstance(space, Discrete) else 0
        out_of_range = jnp.any((action < low) | (action >= high))
        checked = raise_if(
            out_of_range,
            InvalidActionError,
            f"{env_name}: discrete action out of range for {space}.",
            purpose=f"{env_name}.step's range check of discrete actions",
        )
        # Adding the check's (zero) output makes everything downstream, host
        # callbacks included, wait for the check: a bad action never reaches
        # the environment.
        return action.astype(space.dtype) + checked.astype(space.dtype)
    if isinstance(space, Box):
        if jnp.issubdtype(space.dtype, jnp.floating) and not jnp.issubdtype(
            action.dtype, jnp.floating
        ):
            raise InvalidActionError(
                f"{env_name}: continuous actions must be floats, got dtype {action.dtype}."
            )
        return action.astype(space.dtype)
    return action
