"""``Network = feature extractor -> torso -> head``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.sequence_model import Carry, is_sequence_model


class Network(nn.Module):
    """A feature extractor, a torso and a head, over batch-major sequences.

    The torso is either a :class:`~memorax.networks.SequenceModel` (it has a
    carry that resets where ``episode_starts`` is True) or any plain module
    mapping ``[B, T, F] -> [B, T, H]`` (then the carry is ``None`` in and out).

    Heads that take an action (the continuous Q heads) get it through the
    ``action`` keyword: ``head(features, action)``; other heads get
    ``head(features)``.
    """

    feature_extractor: nn.Module
    torso: nn.Module
    head: nn.Module

    @nn.compact
    def __call__(
        self,
        observation: jax.Array,
        episode_starts: jax.Array,
        carry: Carry = None,
        previous_action: jax.Array | None = None,
        previous_reward: jax.Array | None = None,
        action: jax.Array | None = None,
    ) -> tuple[Carry, Any]:
        """Run the network over ``T`` steps (``T = 1`` when acting).

        Args:
            observation: ``[B, T, *obs_shape]``.
            episode_starts: ``[B, T]`` bool, True on the first step of an episode.
            carry: the torso's carry (leading axis ``B``); ``None`` means the
                initial carry for a sequence torso, and must be ``None`` for a
                plain torso.
            previous_action: ``[B, T]`` int or ``[B, T, A]`` float, for the
                feature extractor's ``action_extractor``.
            previous_reward: ``[B, T]``, for its ``reward_extractor``.
            action: ``[B, T, A]``, passed to heads that score an action.

        Returns:
            ``(new_carry, head_output)``; ``new_carry`` is ``None`` for a plain torso.
        """
        if observation.ndim < 2 or jnp.shape(episode_starts) != observation.shape[:2]:
            raise ValueError(
                "Network expects observation [B, T, *obs_shape] and episode_starts [B, T]; got "
                f"{tuple(observation.shape)} and {tuple(jnp.shape(episode_starts))}. "
                "When acting, add a time axis of length 1: observation[:, None]."
            )
        episode_starts = jnp.asarray(episode_starts, bool)
        x = self.feature_extractor(
            observation,
            episode_starts=episode_starts,
            previous_action=previous_action,
            previous_reward=previous_reward,
        )
        if is_sequence_model(self.torso):
            if carry is None:
                carry = self.torso.initialize_carry(observation.shape[0])
            carry, x = self.torso(x, episode_starts, carry)
        else:
            if carry is not None:
                raise ValueError(
                    f"Network's torso {type(self.torso).__name__} is not a SequenceModel, so "
                    "it has no carry: pass carry=None."
                )
            x = self.torso(x)
        output = self.head(x) if action is None else self.head(x, action)
        return carry, output

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> Carry:
        """The torso's initial carry for ``batch_size`` rows, or ``None`` for a plain torso."""
        if is_sequence_model(self.torso):
            return self.torso.initialize_carry(batch_size)
        return None
