"""Turn fully observed tasks into partially observed ones.

Each wrapper transforms both the returned observation and
``info["final_observation"]`` the same way, so bootstrapping sees what the
agent would have seen. Random transforms draw from the step key (the
wrappers hold no state of their own, so nothing can leak from one episode
into the next), and :class:`FlickerObservation` always shows the first
observation of every episode, including those started by an auto-reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from memorax.envs.environment import Environment, Wrapper
from memorax.envs.spaces import Box

__all__ = ["FlickerObservation", "MaskObservation", "NoisyObservation"]


class _ObservationTransform(Wrapper):
    """Applies ``transform(key, obs, episode_start)`` to every observation."""

    def transform(self, key: jax.Array, observation: jax.Array, episode_start: jax.Array):
        raise NotImplementedError

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        reset_key, transform_key = jax.random.split(key)
        observation, state = self.env.reset(reset_key, params)
        start = jnp.ones((self.num_envs,), bool)
        return self.transform(transform_key, observation, start), state

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        step_key, obs_key, final_key = jax.random.split(key, 3)
        observation, state, reward, terminated, truncated, info = self.env.step(
            step_key, state, action, params
        )
        done = terminated | truncated
        info = dict(info)
        # The final observation ends an episode (never a start); the returned
        # observation starts one wherever an episode ended.
        not_start = jnp.zeros_like(done)
        final = self.transform(final_key, info["final_observation"], not_start)
        observation = self.transform(obs_key, observation, done)
        # Where no episode ended the final observation *is* the observation.
        info["final_observation"] = jnp.where(_expand(done, final), final, observation)
        return observation, state, reward, terminated, truncated, info


class MaskObservation(_ObservationTransform):
    """Keeps only the listed dimensions of a flat Box observation.

    Example: ``MaskObservation(env, keep=[0, 2])`` on CartPole hides both
    velocities, so the agent must infer them from memory.
    """

    def __init__(self, env: Environment, keep: Sequence[int]):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, Box) or len(space.shape) != 1:
            raise ValueError(
                f"MaskObservation needs a flat Box observation space, got {space}. "
                "Flatten the observation first or mask a different way."
            )
        keep = tuple(int(i) for i in keep)
        if (
            not keep
            or len(set(keep)) != len(keep)
            or not all(0 <= i < space.shape[0] for i in keep)
        ):
            raise ValueError(
                f"MaskObservation(keep={list(keep)}): indices must be distinct and in "
                f"[0, {space.shape[0]})."
            )
        self.keep = keep
        self._space = Box(
            low=space.low_array[list(keep)], high=space.high_array[list(keep)], dtype=space.dtype
        )

    @property
    def observation_space(self) -> Box:  # type: ignore[override]
        return self._space

    def transform(self, key: jax.Array, observation: jax.Array, episode_start: jax.Array):
        """Selects the kept dimensions."""
        del key, episode_start
        return observation[:, jnp.asarray(self.keep)]


class NoisyObservation(_ObservationTransform):
    """Adds independent Gaussian noise of standard deviation ``std`` to each observation."""

    def __init__(self, env: Environment, std: float):
        super().__init__(env)
        if not jnp.issubdtype(env.observation_space.dtype, jnp.floating):
            raise ValueError(
                f"NoisyObservation needs float observations, got {env.observation_space.dtype}."
            )
        if std < 0:
            raise ValueError(f"NoisyObservation(std={std}): std must be >= 0.")
        self.std = float(std)

    @property
    def observation_space(self) -> Box:  # type: ignore[override]
        space = self.env.observation_space
        return Box(low=-jnp.inf, high=jnp.inf, shape=space.shape, dtype=space.dtype)

    def transform(self, key: jax.Array, observation: jax.Array, episode_start: jax.Array):
        """Adds the noise."""
        del episode_start
        noise = self.std * jax.random.normal(key, observation.shape, jnp.float32)
        return (observation + noise).astype(observation.dtype)


class FlickerObservation(_ObservationTransform):
    """Blanks each observation (all zeros) with probability ``probability``.

    The first observation of an episode is always shown, so the agent has
    something to remember (the flickering-Atari setup of Hausknecht & Stone, 2015).
    """

    def __init__(self, env: Environment, probability: float):
        super().__init__(env)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"FlickerObservation(probability={probability}): must be in [0, 1].")
        self.probability = float(probability)

    @property
    def observation_space(self) -> Any:  # type: ignore[override]
        space = self.env.observation_space
        if isinstance(space, Box):
            low = jnp.minimum(space.low_array, 0.0)
            high = jnp.maximum(space.high_array, 0.0)
            return Box(low=low, high=high, dtype=space.dtype)
        return space

    def transform(self, key: jax.Array, observation: jax.Array, episode_start: jax.Array):
        """Zeros whole observations at random, never at an episode start."""
        blank = jax.random.bernoulli(key, self.probability, (observation.shape[0],))
        blank = blank & ~episode_start
        return jnp.where(_expand(blank, observation), jnp.zeros_like(observation), observation)


def _expand(flags: jax.Array, like: jax.Array) -> jax.Array:
    """Broadcasts ``[num_envs]`` flags against ``[num_envs, ...]`` arrays."""
    return flags.reshape(flags.shape + (1,) * (like.ndim - 1))
