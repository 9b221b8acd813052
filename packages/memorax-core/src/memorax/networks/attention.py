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
# Blocks are attended to in groups of about this many logits (4 MiB in float32), one
# group after another: the logits of all blocks at once outgrow the CPU caches, and each
# logit then costs more (measured: 16 x 1024 steps about 20% slower than in groups).
_GROUP_LOGITS = 2**20


def _windows(x: jax.Array, axis: int, num_blocks: int, block: int, previous: int) -> jax.Array:
    """Overlapping key windows along ``axis``, of length ``(previous + num_blocks) * block``.

    That axis becomes ``[num_blocks, (previous + 1) * block]``: window ``n`` holds
    blocks ``n .. n + previous``.
    """
    shape = (*x.shape[:axis], previous + num_blocks, block, *x.shape[axis + 1 :])
    blocks = jnp.reshape(x, shape)
    shifted = [
        jax.lax.slice_in_dim(blocks, j, j + num_blocks, axis=axis) for j in range(previous + 1)
    ]
    return jnp.concatenate(shifted, axis=axis + 1)


def _attend(
    query: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    segment: jax.Array,
    key_segment: jax.Array,
    key_valid: jax.Array,
    distance: jax.Array,
    window: int,
    slopes: jax.Array | None,
) -> jax.Array:
    """Masked softmax attention within each of ``N`` blocks.

    ``query [B, H, N, Q, D]``, ``keys``/``values [B, H, N, K, D]``, ``segment [B, N, Q]``,
    ``key_segment``/``key_valid [B, N, K]``, ``distance [Q, K]`` = query step minus key
    step (the same in every block), ALiBi ``slopes [H]`` or None -> ``[B, H, N, Q, D]``.
    """
    allowed = (
        ((distance >= 0) & (distance <= window))[None, None]
        & (key_segment[:, :, None, :] == segment[:, :, :, None])
        & key_valid[:, :, None, :]
    )  # [B, N, Q, K]
    query = query / math.sqrt(query.shape[-1])  # scaling [Q, D] is cheaper than [Q, K]
    logits = jnp.einsum("bhnqd,bhnkd->bhnqk", query, keys)
    if slopes is not None:
        logits = logits - slopes[:, None, None, None] * distance
    # Every real query may attend to itself, so none of its rows is fully masked.
    logits = jnp.where(allowed[:, None], logits, -1e30)
    # Softmax normalised after the product with the values: dividing [Q, D] rather
    # than [Q, K] saves a pass over the logits. The max is only for stability.
    weights = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    attended = jnp.einsum("bhnqk,bhnkd->bhnqd", weights, values)
    return attended / jnp.sum(weights, axis=-1, keepdims=True)


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
    ``T**2``. Blocks are processed a group at a time and their logits recomputed
    in the backward pass, so memory stays bounded. Short sequences (acting,
    ``T = 1``) attend to the cache and themselves directly, whichever of the two
    costs fewer logits. The block size changes no parameter, only speed.

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

        # Heads before time, so each block's attention is a plain batched matrix product.
        query, keys_by_head, values_by_head = (
            jnp.swapaxes(x, 1, 2) for x in (query, keys, values)
        )  # [B, H, time, D]
        slopes = alibi_slopes(self.num_heads) if self.positional == "alibi" else None
        layout = self.block_layout(steps)
        if layout is None:
            # One block of all T queries against the cache and all T keys.
            attended = _attend(
                query[:, :, None],
                keys_by_head[:, :, None],
                values_by_head[:, :, None],
                segment[:, None],
                key_segment[:, None],
                key_valid[:, None],
                window + jnp.arange(steps)[:, None] - jnp.arange(window + steps)[None, :],
                window,
                slopes,
            )[:, :, 0]
        else:
            block, previous, num_blocks = layout
            logits_per_block = batch * self.num_heads * block * (previous + 1) * block
            group = max(1, min(num_blocks, _GROUP_LOGITS // logits_per_block))
            num_groups = -(-num_blocks // group)
            # At least `previous` blocks a group, so a group's window reaches back no
            # further than the group before it (or the cache).
            group = max(previous, -(-num_blocks // num_groups))
            num_blocks = num_groups * group  # padded up to whole groups
            padding = num_blocks * block - steps
            front = previous * block - window  # invalid keys so the cache fills whole blocks

            def pad(x: jax.Array, axis: int, before: int = 0) -> jax.Array:
                # Padded steps lie after every real query, so none of them is attended to;
                # repeating the last step keeps each padded query's own key visible to it.
                widths = [(0, 0)] * x.ndim
                widths[axis] = (before, 0)
                x = jnp.pad(x, widths)
                widths[axis] = (0, padding)
                return jnp.pad(x, widths, mode="edge")

            distance = (
                previous * block
                + jnp.arange(block)[:, None]
                - jnp.arange((previous + 1) * block)[None, :]
            )

            def grouped(x: jax.Array, axis: int) -> jax.Array:
                # [..., num_groups * length, ...] -> [num_groups, ..., length, ...]
                shape = (*x.shape[:axis], num_groups, -1, *x.shape[axis + 1 :])
                return jnp.moveaxis(jnp.reshape(x, shape), axis, 0)

            def key_groups(x: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
                # Each group's own keys, and the previous * block keys before them (the tail
                # of the group before, or the cache): the overlapping windows are built in
                # the loop, a group at a time, rather than for every block up front (a copy
                # of twice the keys and values), and each step's gradient flows back once.
                x = pad(x, axis, front)
                own = grouped(jax.lax.slice_in_dim(x, previous * block, None, axis=axis), axis)
                earlier = jnp.reshape(
                    jax.lax.slice_in_dim(x, 0, num_blocks * block, axis=axis),
                    (*x.shape[:axis], num_groups, group * block, *x.shape[axis + 1 :]),
                )
                earlier = jax.lax.slice_in_dim(earlier, 0, previous * block, axis=axis + 1)
                return jnp.moveaxis(earlier, axis, 0), own

            def blocks(x: jax.Array, axis: int) -> jax.Array:
                return jnp.reshape(x, (*x.shape[:axis], group, block, *x.shape[axis + 1 :]))

            def windows(pieces: tuple[jax.Array, jax.Array], axis: int) -> jax.Array:
                return _windows(jnp.concatenate(pieces, axis=axis), axis, group, block, previous)

            # Recomputed in the backward pass, group by group, rather than stored: the
            # logits of every block would outgrow the caches just like the forward pass.
            @jax.checkpoint
            def attend(xs: tuple) -> jax.Array:
                query, keys, values, segment, key_segment, key_valid = xs
                return _attend(
                    blocks(query, 2),
                    windows(keys, 2),
                    windows(values, 2),
                    blocks(segment, 1),
                    windows(key_segment, 1),
                    windows(key_valid, 1),
                    distance,
                    window,
                    slopes,
                )

            attended = jax.lax.map(
                attend,
                (
                    grouped(pad(query, 2), 2),
                    key_groups(keys_by_head, 2),
                    key_groups(values_by_head, 2),
                    grouped(pad(segment, 1), 1),
                    key_groups(key_segment, 1),
                    key_groups(key_valid, 1),
                ),
            )
            # [num_groups, B, H, group, block, D] -> [B, H, time, D]
            attended = jnp.moveaxis(attended, 0, 2)
            attended = jnp.reshape(attended, (batch, self.num_heads, num_blocks * block, head_dim))
            attended = attended[:, :, :steps]
        attended = jnp.swapaxes(attended, 1, 2)  # [B, T, H, D]
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
