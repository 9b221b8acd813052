"""A batched environment built from one-copy pure-JAX functions.

JAX-native backends describe a single environment copy without auto-reset;
this class vmaps it over ``num_envs`` copies and adds the contract's
same-step auto-reset and ``final_observation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from memorax.envs.capabilities import JAX_NATIVE, Capabilities
from memorax.envs.environment import Environment
from memorax.envs.spaces import Space

__all__ = ["VmappedEnvironment"]

SingleReset = Callable[[jax.Array, Any], tuple[jax.Array, Any]]
SingleStep = Callable[[jax.Array, Any, jax.Array, Any], tuple]


class VmappedEnvironment(Environment):
    """``num_envs`` copies of a pure single-copy env, with same-step auto-reset.

    Args:
        name: ``"namespace::id"``.
        num_envs: copies stepped together.
        reset_single: ``(key, params) -> (obs, state)`` for one copy.
        step_single: ``(key, state, action, params) -> (obs, state, reward,
            terminated, truncated)`` for one copy, without any reset.
        observation_space, action_space: spaces of one copy.
        params: the default env params.
        capabilities: defaults to those of a JAX-native backend.
        render_single: ``(state, params) -> [H, W, 3]`` uint8, one copy's frame, for
            backends with a renderer (``None``: :meth:`render` refuses).
    """

    def __init__(
        self,
        name: str,
        num_envs: int,
        reset_single: SingleReset,
        step_single: SingleStep,
        observation_space: Space,
        action_space: Space,
        params: Any,
        capabilities: Capabilities = JAX_NATIVE,
        render_single: Callable[[Any, Any], jax.Array] | None = None,
    ):
        self.name = name
        self.num_envs = num_envs
        self.observation_space = observation_space
        self.action_space = action_space
        self.capabilities = capabilities
        self._reset_single = reset_single
        self._step_single = step_single
        self._params = params
        self._render_single = render_single

    def default_params(self) -> Any:
        """The params ``make`` returned."""
        return self._params

    def render(self, state: Any, params: Any = None) -> jax.Array:
        """Every copy's RGB frame, ``[num_envs, H, W, 3]`` uint8."""
        if self._render_single is None:
            return super().render(state, params)
        params = self._params if params is None else params
        return jax.vmap(self._render_single, in_axes=(0, None))(state, params)

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        params = self._params if params is None else params
        keys = jax.random.split(key, self.num_envs)
        observation, state = jax.vmap(self._reset_single, in_axes=(0, None))(keys, params)
        return self._cast_observation(observation), state

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        params = self._params if params is None else params
        # Every copy's step and reset keys from one split: on CPUs each split is a
        # loop of small kernels, a visible share of a cheap env's step.
        keys = jax.random.split(key, (self.num_envs, 2))
        return jax.vmap(self._step_and_reset, in_axes=(0, 0, 0, 0, None))(
            keys[:, 0], keys[:, 1], state, action, params
        )

    def _step_and_reset(
        self, step_key: jax.Array, reset_key: jax.Array, state: Any, action: jax.Array, params: Any
    ):
        observation, next_state, reward, terminated, truncated = self._step_single(
            step_key, state, action, params
        )
        observation = self._cast_observation(observation)
        reset_observation, reset_state = self._reset_single(reset_key, params)
        reset_observation = self._cast_observation(reset_observation)
        done = jnp.logical_or(terminated, truncated)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        info = {"final_observation": observation}
        returned = jnp.where(done, reset_observation, observation)
        return (
            returned,
            next_state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, bool),
            jnp.asarray(truncated, bool),
            info,
        )

    def _cast_observation(self, observation: jax.Array) -> jax.Array:
        return jnp.asarray(observation).astype(self.observation_space.dtype)
