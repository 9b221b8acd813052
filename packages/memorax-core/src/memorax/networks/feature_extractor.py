"""Embed what a memory agent sees at each step and concatenate it."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class FeatureExtractor(nn.Module):
    """Embed the observation and, optionally, the previous action, the previous
    reward and the episode-start flag, then concatenate on the last axis.

    Memory agents need the previous action and reward to infer what a
    partially observed environment is doing, and the episode-start flag to
    tell a new episode from a continuing one.

    Attributes:
        observation_extractor: ``[B, T, *obs_shape] -> [B, T, F_obs]``.
        action_extractor: ``[B, T]`` int (e.g. :class:`OneHot`) or ``[B, T, A]``
            float ``-> [B, T, F_a]``; ``None`` ignores the previous action.
        reward_extractor: applied to ``[B, T, 1]`` float; ``None`` ignores it.
        done_extractor: applied to the episode-start flags as ``[B, T, 1]``
            float; ``None`` ignores them.
    """

    observation_extractor: nn.Module
    action_extractor: nn.Module | None = None
    reward_extractor: nn.Module | None = None
    done_extractor: nn.Module | None = None

    @nn.compact
    def __call__(
        self,
        observation: jax.Array,
        episode_starts: jax.Array | None = None,
        previous_action: jax.Array | None = None,
        previous_reward: jax.Array | None = None,
    ) -> jax.Array:
        """Return features ``[B, T, F]``."""
        features = [self.observation_extractor(observation)]
        if self.action_extractor is not None:
            if previous_action is None:
                raise ValueError(
                    "FeatureExtractor has an action_extractor but previous_action is None: "
                    "pass previous_action ([B, T] int or [B, T, A] float) or drop the "
                    "action_extractor."
                )
            features.append(self.action_extractor(previous_action))
        if self.reward_extractor is not None:
            if previous_reward is None:
                raise ValueError(
                    "FeatureExtractor has a reward_extractor but previous_reward is None: "
                    "pass previous_reward ([B, T]) or drop the reward_extractor."
                )
            reward = jnp.asarray(previous_reward, jnp.float32)[..., None]
            features.append(self.reward_extractor(reward))
        if self.done_extractor is not None:
            if episode_starts is None:
                raise ValueError(
                    "FeatureExtractor has a done_extractor but episode_starts is None: "
                    "pass episode_starts ([B, T] bool) or drop the done_extractor."
                )
            done = jnp.asarray(episode_starts, jnp.float32)[..., None]
            features.append(self.done_extractor(done))
        leading = features[0].shape[:2]
        for feature in features:
            if feature.ndim != 3 or feature.shape[:2] != leading:
                raise ValueError(
                    "Every extractor must return [B, T, F] with the same B and T; got shapes "
                    f"{[tuple(f.shape) for f in features]}. Flatten observation axes in "
                    "the observation extractor (e.g. MLP flattens them)."
                )
        return jnp.concatenate([f.astype(jnp.float32) for f in features], axis=-1)
