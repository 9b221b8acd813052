"""A tiny pure-JAX env for testing core's env machinery without any env library.

Each episode lasts a random 3..6 steps (drawn from the reset key); the
observation is ``[steps left, episode length]``; reward is ``1 + action``;
the episode terminates when no step is left. ``time_limit`` adds a
truncation after that many steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from memorax.envs import (
    HOST_CALLBACK,
    JAX_NATIVE,
    Box,
    Discrete,
    Namespace,
    VmappedEnvironment,
)


@struct.dataclass
class CountdownParams:
    """``time_limit``: steps after which an episode is truncated."""

    time_limit: int = 1000


def make_countdown(env_id: str, num_envs: int, time_limit: int = 1000, fault: str | None = None):
    """Builds ``num_envs`` countdown envs; ``env_id`` must be ``"Countdown-v0"``.

    ``fault`` breaks one contract point on purpose, to test that the contract
    suite notices: ``"merge_truncation"`` (time limits reported as
    terminated), ``"no_final_observation"`` (final_observation is the reset
    observation), ``"claims_host"`` (declares host execution).
    """
    params = CountdownParams(time_limit=time_limit)

    def reset_single(key: jax.Array, params: Any):
        length = jax.random.randint(key, (), 3, 7)
        state = {"left": length, "length": length, "time": jnp.int32(0)}
        return _observe(state), state

    def step_single(key: jax.Array, state: Any, action: jax.Array, params: Any):
        del key
        state = {
            "left": state["left"] - 1,
            "length": state["length"],
            "time": state["time"] + 1,
        }
        terminated = state["left"] <= 0
        truncated = (state["time"] >= params.time_limit) & ~terminated
        if fault == "merge_truncation":
            terminated, truncated = terminated | truncated, jnp.zeros_like(truncated)
        return _observe(state), state, 1.0 + action, terminated, truncated

    env = (_WithoutFinalObservation if fault == "no_final_observation" else VmappedEnvironment)(
        name=f"test::{env_id}",
        num_envs=num_envs,
        reset_single=reset_single,
        step_single=step_single,
        observation_space=Box(low=0.0, high=6.0, shape=(2,)),
        action_space=Discrete(2),
        params=params,
        capabilities=HOST_CALLBACK if fault == "claims_host" else JAX_NATIVE,
    )
    return env, params


class _WithoutFinalObservation(VmappedEnvironment):
    """Reports the new episode's first observation as the final one (a contract bug)."""

    def _step(self, key, state, action, params):
        observation, state, reward, terminated, truncated, _ = super()._step(
            key, state, action, params
        )
        return observation, state, reward, terminated, truncated, {"final_observation": observation}


def _observe(state: dict) -> jax.Array:
    return jnp.stack([state["left"], state["length"]]).astype(jnp.float32)


NAMESPACE = Namespace(
    name="test",
    factory=make_countdown,
    env_ids=lambda: ["Countdown-v0"],
    requires=(),
    install="pip install nothing",
    contract_ids=("Countdown-v0",),
)
