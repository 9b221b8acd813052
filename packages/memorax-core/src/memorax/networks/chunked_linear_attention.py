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


def pad_time(x: jax.Array, pad: int) -> jax.Array:
    """``x`` with ``pad`` zero steps appended along axis 1 (time), to fill a last chunk."""
    widths = [(0, 0)] * x.ndim
    widths[1] = (0, pad)
    return jnp.pad(x, widths)


def chunked_linear_attention(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    log_decay: jax.Array | None,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    chunk_size: int = 64,
) -> tuple[jax.Array, jax.Array]:
    """Run gated linear attention over a sequence.

    Args:
        queries, keys: ``[B, T, H, K]``.
        values: ``[B, T, H, V]``.
        log_decay: ``log a_t: [B, T, H]``, finite and ``<= 0``; None for no decay
            (plain linear attention), which skips the decay arithmetic.
        episode_starts: ``[B, T]`` bool.
        initial_state: ``S_{-1}: [B, H, K, V]``.
        chunk_size: steps per chunk (``min(chunk_size, T)`` is used).

    Returns:
        ``(S_{T-1} [B, H, K, V], y [B, T, H, V])``.
    """
    batch, steps = queries.shape[:2]
    if steps == 1:
        return _single_step(queries, keys, values, log_decay, episode_starts, initial_state)
    size = max(1, min(chunk_size, steps))
    num_chunks = -(-steps // size)
    # Padded steps decay by 1 and add nothing, so the final state is unchanged.
    pad = num_chunks * size - steps
    q, k, v, starts = (pad_time(x, pad) for x in (queries, keys, values, episode_starts))

    def chunked(x: jax.Array) -> jax.Array:
        return jnp.reshape(x, (batch, num_chunks, size, *x.shape[2:]))

    q, k, v, starts = (chunked(x) for x in (q, k, v, starts))
    # segment[i]: number of episode starts in the chunk up to and including step i.
    # Steps i and j share an episode iff their segments are equal.
    segment = jnp.cumsum(starts.astype(jnp.int32), axis=2)  # [B, N, C]
    causal = jnp.tril(jnp.ones((size, size), bool))
    pair = (segment[..., :, None] == segment[..., None, :]) & causal  # [B, N, C, C]
    last_segment = segment[..., -1:]
    # Weights (a trailing axis of H heads, or of 1 without decay): gap[i, j] of key j
    # at query i within the chunk; key_weight[j] of key j in the state the chunk
    # leaves; carried, the decay of the incoming state over the chunk; read_weight[i],
    # of the incoming state at query i.
    dtype = q.dtype
    if log_decay is None:
        # No decay (plain linear attention): the weights are the episode masks alone.
        gap = pair[..., None].astype(dtype)  # [B, N, C, C, 1]
        key_weight = (segment == last_segment)[..., None].astype(dtype)  # [B, N, C, 1]
        carried = (last_segment == 0).astype(dtype)[:, :, 0, None, None, None]
        read_weight = (segment == 0)[..., None].astype(dtype)
    else:
        g = chunked(pad_time(log_decay, pad))
        # cumulative[i]: log of the decay applied from the chunk start, or from the last
        # episode start if later, through step i. Summing with the 0/1 pair mask (rather
        # than subtracting a prefix) keeps earlier episodes out of it bit for bit.
        cumulative = jnp.einsum("bnij,bnjh->bnih", pair.astype(g.dtype), g)  # [B, N, C, H]
        mask = pair[..., None]
        log_gap = cumulative[:, :, :, None, :] - cumulative[:, :, None, :, :]
        # Masked pairs may have a positive gap; zero it before exp to avoid overflow.
        gap = jnp.where(mask, jnp.exp(jnp.where(mask, log_gap, 0.0)), 0.0)  # [B, N, C, C, H]
        last_cumulative = cumulative[:, :, -1:, :]
        key_weight = jnp.where(
            (segment == last_segment)[..., None], jnp.exp(last_cumulative - cumulative), 0.0
        )
        carried = jnp.where((last_segment == 0)[..., None], jnp.exp(last_cumulative), 0.0)
        carried = carried[:, :, 0, :, None, None]  # [B, N, H, 1, 1]
        read_weight = jnp.where((segment == 0)[..., None], jnp.exp(cumulative), 0.0)

    # Within a chunk: y_i += sum_{j <= i, same episode} (a_{j+1} ... a_i) (q_i . k_j) v_j.
    scores = jnp.einsum("bnihk,bnjhk->bnijh", q, k) * gap
    intra = jnp.einsum("bnijh,bnjhv->bnihv", scores, v)
    # What each chunk adds to the state, and how it decays the incoming state.
    added = jnp.einsum("bnjhk,bnjhv->bnhkv", k * key_weight[..., None], v)

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
    inter = jnp.einsum("bnihk,bnhkv->bnihv", q * read_weight[..., None], before)

    outputs = jnp.reshape(intra + inter, (batch, num_chunks * size, *values.shape[2:]))
    return final, outputs[:, :steps]


def _single_step(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    log_decay: jax.Array | None,
    episode_starts: jax.Array,
    initial_state: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """One step (acting) as the recurrence itself, ``S = a S_in + k v^T``, ``y = q S``,
    with ``S_in`` dropped at an episode start: the chunked form's bookkeeping costs
    more than the step."""
    keep = 1.0 - episode_starts[:, 0].astype(queries.dtype)  # [B]
    decay = keep[:, None] if log_decay is None else keep[:, None] * jnp.exp(log_decay[:, 0])
    state = decay[:, :, None, None] * initial_state.astype(queries.dtype)
    state = state + jnp.einsum("bhk,bhv->bhkv", keys[:, 0], values[:, 0])
    read = jnp.einsum("bhk,bhkv->bhv", queries[:, 0], state)
    return state, read[:, None]
