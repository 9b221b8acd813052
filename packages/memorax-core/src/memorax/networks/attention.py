"""Multi-head self-attention with a sliding key/value cache in the carry."""

from __future__ import annotations

import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.sequence_model import (
    SequenceModel,
    check_head_dim,
    check_sequence_inputs,
)

_POSITIONAL = ("rope", "alibi", "none")


def rotate(x: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
    """Rotary position embedding (Su et al., 2021).

    Rotates pairs ``(x[..., i], x[..., i + D/2])`` of ``x: [B, T, H, D]`` by
    ``positions [B, T] * base^(-2i/D)``, so the dot product of a rotated query
    and key depends only on their position difference.
    """
    half = x.shape[-1] // 2
    frequencies = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions[..., None, None].astype(jnp.float32) * frequencies  # [B, T, 1, D/2]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    first, second = x[..., :half], x[..., half:]
    return jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)


def alibi_slopes(num_heads: int) -> jax.Array:
    """ALiBi's per-head slopes ``2^(-8 h / num_heads)``, ``h = 1..num_heads``.

    Press et al., 2022.
    """
    return 2.0 ** (-8.0 * jnp.arange(1, num_heads + 1, dtype=jnp.float32) / num_heads)


def episode_positions(
    episode_starts: jax.Array, first_position: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Step index within the episode for each of ``T`` steps.

    Args:
        episode_starts: ``[B, T]`` bool.
        first_position: ``[B]`` int, the position of step 0 if no episode starts there.

    Returns:
        ``(positions [B, T], next_position [B])``.
    """
    steps = episode_starts.shape[1]
    index = jnp.arange(steps, dtype=jnp.int32)
    last_start = jax.lax.cummax(jnp.where(episode_starts, index, -1), axis=1)
    positions = jnp.where(last_start >= 0, index - last_start, first_position[:, None] + index)
    return positions, positions[:, -1] + 1


# Blocks shorter than this cost more in per-block overhead than the masked keys they save.
_MIN_BLOCK = 16


def _windows(x: jax.Array, num_blocks: int, block: int, previous: int) -> jax.Array:
    """Overlapping key windows: ``[B, (previous + num_blocks) * block, ...]`` ->
    ``[B, num_blocks, (previous + 1) * block, ...]``, window ``n`` = blocks ``n .. n + previous``.
    """
    blocks = jnp.reshape(x, (x.shape[0], previous + num_blocks, block, *x.shape[2:]))
    shifted = [blocks[:, j : j + num_blocks] for j in range(previous + 1)]
    return jnp.concatenate(shifted, axis=2)


class MultiHeadAttention(SequenceModel):
    """Causal multi-head self-attention over a sliding window of ``context_length`` past steps.

    Each step attends to itself and the previous ``context_length`` steps of
    its own episode. The carry caches their keys and values, so acting one
    step at a time and training on a whole sequence give the same outputs.

    - Keys from before an episode start are masked out, both inside the
      sequence and in the cache.
    - Positions count steps since the episode start (carried across calls):
      ``"rope"`` rotates queries and keys by them (keys are cached rotated);
      ``"alibi"`` adds ``-slope_h * (t_query - t_key)`` to the logits;
      ``"none"`` uses no positions.

    Long sequences are computed in blocks of ``block_size`` steps (default
    ``max(context_length, 16)``): a block's queries see only the keys of their
    own block and of the ``ceil(context_length / block_size)`` blocks before it
    (or the cache), so time and memory grow linearly in ``T`` rather than as
    ``T**2``. Short sequences (acting, ``T = 1``) attend to the cache and
    themselves directly, whichever of the two costs fewer logits.

    ``[B, T, F] -> [B, T, features]``; carry ``{"keys", "values": [B, context_length,
    num_heads, head_dim], "valid": [B, context_length] bool, "position": [B] int32}``.
    """

    features: int
    num_heads: int = 4
    context_length: int = 64
    positional: Literal["rope", "alibi", "none"] = "rope"
    block_size: int | None = None

    def _check(self) -> int:
        head_dim = check_head_dim("MultiHeadAttention", self.features, self.num_heads)
        if self.positional not in _POSITIONAL:
            raise ValueError(
                f"MultiHeadAttention positional must be one of {_POSITIONAL}, "
                f"got {self.positional!r}."
            )
        if self.positional == "rope" and head_dim % 2:
            raise ValueError(
                f"RoPE rotates pairs of dimensions, so head_dim = features // num_heads must be "
                f"even, got {head_dim}."
            )
        if self.context_length < 1:
            raise ValueError(
                f"MultiHeadAttention context_length must be >= 1, got {self.context_length}."
            )
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(
                f"MultiHeadAttention block_size must be >= 1 or None, got {self.block_size}."
            )
        return head_dim

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: dict[str, jax.Array]
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        check_sequence_inputs("MultiHeadAttention", inputs, episode_starts)
        head_dim = self._check()
        batch, steps = inputs.shape[:2]
        window = self.context_length
        shape = (batch, steps, self.num_heads, head_dim)
        query = jnp.reshape(Dense(self.features, name="query")(inputs), shape)
        key = jnp.reshape(Dense(self.features, name="key")(inputs), shape)
        value = jnp.reshape(Dense(self.features, name="value")(inputs), shape)

        positions, next_position = episode_positions(episode_starts, carry["position"])
        if self.positional == "rope":
            query, key = rotate(query, positions), rotate(key, positions)

        # Cached steps come first: index i < window is the step window - i before this call.
        keys = jnp.concatenate([carry["keys"].astype(key.dtype), key], axis=1)
        values = jnp.concatenate([carry["values"].astype(value.dtype), value], axis=1)
        segment = jnp.cumsum(episode_starts.astype(jnp.int32), axis=1)  # [B, T]
        key_segment = jnp.concatenate([jnp.zeros((batch, window), jnp.int32), segment], axis=1)
        key_valid = jnp.concatenate([carry["valid"], jnp.ones((batch, steps), bool)], axis=1)

        layout = self.block_layout(steps)
        if layout is None:
            # One block of all T queries against the cache and all T keys.
            attended = self._attend(
                query[:, None],
                keys[:, None],
                values[:, None],
                segment[:, None],
                key_segment[:, None],
                key_valid[:, None],
                window + jnp.arange(steps)[:, None] - jnp.arange(window + steps)[None, :],
            )[:, 0]
        else:
            block, previous, num_blocks = layout
            padding = num_blocks * block - steps
            front = previous * block - window  # invalid keys so the cache fills whole blocks

            def pad(x: jax.Array, before: int = 0) -> jax.Array:
                # Padded steps lie after every real query, so none of them is attended to;
                # repeating the last step keeps each padded query's own key visible to it.
                x = jnp.pad(x, [(0, 0), (before, 0)] + [(0, 0)] * (x.ndim - 2))
                return jnp.pad(x, [(0, 0), (0, padding)] + [(0, 0)] * (x.ndim - 2), mode="edge")

            def blocked(x: jax.Array) -> jax.Array:
                return jnp.reshape(x, (batch, num_blocks, block, *x.shape[2:]))

            def windows(x: jax.Array) -> jax.Array:
                return _windows(pad(x, front), num_blocks, block, previous)

            attended = self._attend(
                blocked(pad(query)),
                windows(keys),
                windows(values),
                blocked(pad(segment)),
                windows(key_segment),
                windows(key_valid),
                previous * block
                + jnp.arange(block)[:, None]
                - jnp.arange((previous + 1) * block)[None, :],
            )
            attended = jnp.reshape(attended, (batch, num_blocks * block, *attended.shape[3:]))
            attended = attended[:, :steps]
        outputs = Dense(self.features, name="out")(jnp.reshape(attended, (batch, steps, -1)))

        new_carry = {
            "keys": keys[:, steps:],
            "values": values[:, steps:],
            # Cached keys from before the last episode start in this call are dead.
            "valid": key_valid[:, steps:] & (key_segment[:, steps:] == segment[:, -1:]),
            "position": next_position,
        }
        return new_carry, outputs

    @nn.nowrap
    def block_layout(self, steps: int) -> tuple[int, int, int] | None:
        """How a call over ``steps`` steps is split: ``(block, previous, num_blocks)``.

        ``previous`` is how many key blocks before a query block its window reaches.
        None where attending to the cache and all ``steps`` keys at once costs no
        more logits than the blocks would (short sequences, acting).
        """
        window = self.context_length
        block = self.block_size or max(window, _MIN_BLOCK)
        previous = -(-window // block)
        num_blocks = -(-steps // block)
        if steps * (window + steps) <= num_blocks * block * (previous + 1) * block:
            return None
        return block, previous, num_blocks

    def _attend(
        self,
        query: jax.Array,
        keys: jax.Array,
        values: jax.Array,
        segment: jax.Array,
        key_segment: jax.Array,
        key_valid: jax.Array,
        distance: jax.Array,
    ) -> jax.Array:
        """Masked softmax attention within each of ``N`` blocks.

        ``query [B, N, Q, H, D]``, ``keys``/``values [B, N, K, H, D]``, ``segment [B, N, Q]``,
        ``key_segment``/``key_valid [B, N, K]``, ``distance [Q, K]`` = query step minus key
        step (the same in every block) -> ``[B, N, Q, H, D]``.
        """
        window = self.context_length
        allowed = (
            ((distance >= 0) & (distance <= window))[None, None]
            & (key_segment[:, :, None, :] == segment[:, :, :, None])
            & key_valid[:, :, None, :]
        )  # [B, N, Q, K]
        logits = jnp.einsum("bnqhd,bnkhd->bnhqk", query, keys) / math.sqrt(query.shape[-1])
        if self.positional == "alibi":
            logits = logits - alibi_slopes(self.num_heads)[:, None, None] * distance
        # Every real query may attend to itself, so none of its rows is fully masked.
        logits = jnp.where(allowed[:, :, None], logits, -1e30)
        weights = jax.nn.softmax(logits, axis=-1)
        return jnp.einsum("bnhqk,bnkhd->bnqhd", weights, values)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> dict[str, jax.Array]:
        """An empty cache (all entries invalid) at position 0."""
        head_dim = self._check()
        cache = jnp.zeros((batch_size, self.context_length, self.num_heads, head_dim), jnp.float32)
        return {
            "keys": cache,
            "values": cache,
            "valid": jnp.zeros((batch_size, self.context_length), bool),
            "position": jnp.zeros((batch_size,), jnp.int32),
        }
