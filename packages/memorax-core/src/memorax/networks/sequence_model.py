"""The sequence-model protocol every torso with memory follows."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Carry = Any


class SequenceModel(nn.Module):
    """A memory model over batch-major sequences.

    Subclasses implement one computation that serves both acting (``T = 1``,
    carry threaded by the caller) and training (whole sequences, in parallel
    where the model allows it), with the same result either way.

    ``__call__(inputs, episode_starts, carry) -> (new_carry, outputs)``:

    - ``inputs: [B, T, F]`` float.
    - ``episode_starts: [B, T]`` bool, True where step ``t`` is the first step
      of a new episode: the carry is reset to the initial carry *before* step
      ``t`` is processed, so nothing from earlier steps reaches step ``t`` or
      any later step.
    - ``carry``: a pytree whose leaves have leading axis ``B``.
    - ``outputs: [B, T, H]``.

    ``initialize_carry(batch_size)`` builds the initial carry from the
    module's configuration alone (no params, no inputs), so it works on an
    unbound module: ``GRU(features=64).initialize_carry(8)``.
    """

    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: Carry
    ) -> tuple[Carry, jax.Array]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__.")

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> Carry:
        """Return the carry at the start of an episode, leaves ``[batch_size, ...]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement initialize_carry.")


def is_sequence_model(module: Any) -> bool:
    """True if ``module`` follows the :class:`SequenceModel` protocol (has a carry)."""
    return isinstance(module, SequenceModel)


def check_sequence_inputs(name: str, inputs: jax.Array, episode_starts: jax.Array) -> None:
    """Raise ValueError unless ``inputs: [B, T, F]`` and ``episode_starts: [B, T]`` agree."""
    if inputs.ndim != 3:
        raise ValueError(
            f"{name} expects inputs of shape [batch, time, features], got shape "
            f"{tuple(inputs.shape)}. Add a time axis of length 1 when acting "
            "(inputs[:, None]) and flatten observation axes in the feature extractor."
        )
    if tuple(episode_starts.shape) != tuple(inputs.shape[:2]):
        raise ValueError(
            f"{name} expects episode_starts of shape [batch, time] = "
            f"{tuple(inputs.shape[:2])}, got {tuple(episode_starts.shape)}."
        )


def check_head_dim(name: str, features: int, num_heads: int) -> int:
    """Return ``features // num_heads``; raise ValueError unless it divides evenly."""
    if num_heads < 1 or features % num_heads:
        raise ValueError(
            f"{name} needs features divisible by num_heads, got features={features}, "
            f"num_heads={num_heads}."
        )
    return features // num_heads


def reset_where(start: jax.Array, carry: Carry, initial: Carry) -> Carry:
    """Per batch row, replace ``carry`` by ``initial`` where ``start: [B]`` is True."""

    def select(current: jax.Array, init: jax.Array) -> jax.Array:
        mask = jnp.reshape(start, start.shape + (1,) * (current.ndim - 1))
        return jnp.where(mask, init, current)

    return jax.tree_util.tree_map(select, carry, initial)


def time_major(x: jax.Array) -> jax.Array:
    """Swap the batch and time axes: ``[B, T, ...] <-> [T, B, ...]``."""
    return jnp.swapaxes(x, 0, 1)
