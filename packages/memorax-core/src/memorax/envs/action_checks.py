"""Validation of actions passed to ``Environment.step``.

Shape and dtype mistakes are caught while tracing, for free. Out-of-range
values can only be seen at run time: they are checked on the device and, only
when a bad value is present, a host callback raises. Under ``jax.vmap`` the
check is folded over the whole batch (``custom_vmap``) so that a vmapped
``cond`` does not turn into a callback on every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

from memorax.envs.host_callbacks import require_host_backend
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
        require_host_backend(f"{env_name}.step's range check of discrete actions")
        out_of_range = jnp.any((action < low) | (action >= high))
        checked = _raise_if(out_of_range, f"{env_name}: discrete action out of range for {space}.")
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


def _raise_if(flag: jax.Array, message: str) -> jax.Array:
    """Raises ``InvalidActionError(message)`` from the host when ``flag`` is set.

    Returns a zero scalar that callers add to their output to order the check
    before whatever consumes it.
    """

    def host_raise(bad: np.ndarray) -> np.ndarray:
        if np.any(bad):
            raise InvalidActionError(message)
        return np.zeros((), np.int32)

    @custom_vmap
    def check(bad: jax.Array) -> jax.Array:
        return jax.lax.cond(
            bad,
            lambda: io_callback(host_raise, jax.ShapeDtypeStruct((), jnp.int32), bad),
            lambda: jnp.zeros((), jnp.int32),
        )

    @check.def_vmap
    def _check_whole_batch(axis_size: int, in_batched: Any, bad: jax.Array) -> Any:
        del in_batched
        return jnp.broadcast_to(check(jnp.any(bad)), (axis_size,)), True

    return check(flag)
