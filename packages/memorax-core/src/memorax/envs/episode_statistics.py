"""Episode returns and lengths, counted correctly across same-step auto-resets."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from memorax.envs.environment import Environment, Wrapper

__all__ = ["EpisodeStatistics", "EpisodeStatisticsState"]


@struct.dataclass
class EpisodeStatisticsState:
    """Running totals of the episode in progress, per env copy.

    Attributes:
        env_state: the wrapped env's state.
        episode_return: ``[num_envs]`` sum of rewards so far in this episode.
        episode_length: ``[num_envs]`` steps so far in this episode.
    """

    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Adds ``info["episode"]``: the return and length of episodes that just ended.

    ``info["episode"]`` is a dict of ``[num_envs]`` arrays: ``"done"`` (an
    episode ended this step, terminated or truncated), ``"return"`` and
    ``"length"`` (of that episode; zero where ``done`` is False). The step that
    ends an episode counts towards it; the new episode starts at zero, so the
    reward of the final step is never carried into the next episode.
    """

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        observation, env_state = self.env.reset(key, params)
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=zeros,
            episode_length=jnp.zeros((self.num_envs,), jnp.int32),
        )
        return observation, state

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        observation, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        episode_return = state.episode_return + reward.astype(jnp.float32)
        episode_length = state.episode_length + 1
        done = terminated | truncated
        info = dict(info)
        info["episode"] = {
            "done": done,
            "return": jnp.where(done, episode_return, 0.0),
            "length": jnp.where(done, episode_length, 0),
        }
        new_state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length),
        )
        return observation, new_state, reward, terminated, truncated, info


def unwrap_env_state(env: Environment, state: Any) -> Any:
    """The innermost env state below any :class:`EpisodeStatistics` layers."""
    while isinstance(state, EpisodeStatisticsState):
        state = state.env_state
    return state
