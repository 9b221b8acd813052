"""Gated linear attention with per-step episode resets, computed chunk by chunk.

The recurrence is ``S_t = a_t S_{t-1} + k_t v_t^T`` (``S`` reset to zero
before an episode start) with read-out ``y_t = S_t^T q_t``, where ``a_t`` is
a scalar decay per head. Linear attention, mLSTM and Mamba-2's selective SSM
are all instances. Within a chunk of ``C`` steps it is computed in its
quadratic (attention) form; a short scan over chunks threads the state.
Memory is ``O(T C + T/C * K V)`` instead of the ``O(T K V)`` a per-step
state scan would need, and the work is mostly matrix products.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _pad_time(x: jax.Array, pad: int) -> jax.Array:
    widths = [(0, 0)] * x.ndim
    widths[1] = (0, pad)
    return jnp.pad(x, widths)


def chunked_linear_attention(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    log_decay: jax.Array,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    chunk_size: int = 64,
) -> tuple[jax.Array, jax.Array]:
    """Run gated linear attention over a sequence.

    Args:
        queries, keys: ``[B, T, H, K]``.
        values: ``[B, T, H, V]``.
        log_decay: ``log a_t: [B, T, H]``, finite and ``<= 0``.
        episode_starts: ``[B, T]`` bool.
        initial_state: ``S_{-1}: [B, H, K, V]``.
        chunk_size: steps per chunk (``min(chunk_size, T)`` is used).

    Returns:
        ``(S_{T-1} [B, H, K, V], y [B, T, H, V])``.
    """
    batch, steps = queries.shape[:2]
    size = max(1, min(chunk_size, steps))
    num_chunks = -(-steps // size)
    # Padded steps decay by 1 and add nothing, so the final state is unchanged.
    pad = num_chunks * size - steps
    q, k, v, g, starts = (
        _pad_time(x, pad) for x in (queries, keys, values, log_decay, episode_starts)
    )

    def chunked(x: jax.Array) -> jax.Array:
        return jnp.reshape(x, (batch, num_chunks, size, *x.shape[2:]))

    q, k, v, g, starts = (chunked(x) for x in (q, k, v, g, starts))
    # segment[i]: number of episode starts in the chunk up to and including step i.
    # Steps i and j share an episode iff their segments are equal.
    segment = jnp.cumsum(starts.astype(jnp.int32), axis=2)  # [B, N, C]
    # Within a chunk: y_i += sum_{j <= i, same episode} (a_{j+1} ... a_i) (q_i . k_j) v_j.
    causal = jnp.tril(jnp.ones((size, size), bool))
    pair = (segment[..., :, None] == segment[..., None, :]) & causal  # [B, N, C, C]
    # cumulative[i]: log of the decay applied from the chunk start, or from the last
    # episode start if later, through step i. Summing with the 0/1 pair mask (rather
    # than subtracting a prefix) keeps earlier episodes out of it bit for bit.
    cumulative = jnp.einsum("bnij,bnjh->bnih", pair.astype(g.dtype), g)  # [B, N, C, H]
    pair = pair[..., None]
    log_gap = cumulative[:, :, :, None, :] - cumulative[:, :, None, :, :]
    # Masked pairs may have a positive gap; zero it before exp to avoid overflow.
    gap = jnp.where(pair, jnp.exp(jnp.where(pair, log_gap, 0.0)), 0.0)  # [B, N, C, C, H]
    scores = jnp.einsum("bnihk,bnjhk->bnijh", q, k) * gap
    intra = jnp.einsum("bnijh,bnjhv->bnihv", scores, v)

    # What each chunk adds to the state, and how it decays the incoming state.
    last_segment = segment[..., -1:]
    last_cumulative = cumulative[:, :, -1:, :]
    key_weight = jnp.where(
        (segment == last_segment)[..., None], jnp.exp(last_cumulative - cumulative), 0.0
    )
    added = jnp.einsum("bnjh,bnjhk,bnjhv->bnhkv", key_weight, k, v)
    carried = jnp.where((last_segment == 0)[..., None], jnp.exp(last_cumulative), 0.0)
    carried = carried[:, :, 0, :, None, None]  # [B, N, H, 1, 1]

    # Across chunks, a short sequential scan (T / C steps) threads the state.
    def across(state: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        decay, add = xs
        return decay * state + add, state

    final, before = jax.lax.scan(
        across,
        initial_state.astype(added.dtype),
        (jnp.swapaxes(carried, 0, 1), jnp.swapaxes(added, 0, 1)),
    )
    before = jnp.swapaxes(before, 0, 1)  # state entering each chunk [B, N, H, K, V]

    # Read the incoming state at steps that precede any start in the chunk.
    read_weight = jnp.where((segment == 0)[..., None], jnp.exp(cumulative), 0.0)
    inter = jnp.einsum("bnih,bnihk,bnhkv->bnihv", read_weight, q, before)

    outputs = jnp.reshape(intra + inter, (batch, num_chunks * size, *values.shape[2:]))
    return final, outputs[:, :steps]
