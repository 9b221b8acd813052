"""The gated delta rule with per-step episode resets, computed chunk by chunk.

The recurrence (per head, state ``S: [K, V]``) is

``S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T``, read out as ``y_t = S_t^T q_t``,

with a scalar decay ``a_t`` and write strength ``b_t``. ``a_t = 1`` is
DeltaNet (Schlag et al., 2021), a learned ``a_t`` Gated DeltaNet (Yang et
al., 2025). An episode start is a decay of exactly 0 at that step.

Whole sequences use the chunkwise form of Yang et al. (2024), "Parallelizing
Linear Transformers with the Delta Rule over Sequence Length". Writing the
state inside a chunk as ``S_i = g_i S_0 + sum_{j <= i} (g_i / g_j) k_j u_j^T``
(``g_i``: the decay from the chunk start through step ``i``), the new values
``u`` solve a unit lower-triangular system (the UT transform of the WY
representation), ``(I + A) U = diag(b) V - diag(b g) K S_0`` with
``A_ij = b_i (g_i / g_j) k_i . k_j`` for ``j < i``. So ``U = U' - W S_0``
with ``W, U'`` independent of ``S_0``: everything but a short scan over
chunks (``S' = M S + N``) is matrix products within chunks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _pad_time(x: jax.Array, pad: int) -> jax.Array:
    widths = [(0, 0)] * x.ndim
    widths[1] = (0, pad)
    return jnp.pad(x, widths)


def _masked_exp(mask: jax.Array, log_value: jax.Array) -> jax.Array:
    """``exp(log_value)`` where ``mask``, else 0, with finite gradients everywhere.

    Masked entries may hold large positive logs (decays of other episodes),
    so they are zeroed before ``exp``: a plain ``where`` would still
    differentiate ``exp`` there and give ``0 * inf = nan``.
    """
    return jnp.where(mask, jnp.exp(jnp.where(mask, log_value, 0.0)), 0.0)


def _unit_lower_inverse(strictly_lower: jax.Array) -> jax.Array:
    """``(I + L)^{-1}`` for strictly lower-triangular ``L: [..., C, C]``, by matrix products.

    Blockwise inversion, doubling the block size: with the inverses ``T11, T22``
    of two diagonal blocks known, the block below them is ``-T22 L21 T11``.
    ``log2 C`` rounds of matmuls, as stable as substitution, and no LAPACK
    triangular solve: jaxlib 0.10's batched one can hang XLA's CPU thread pool
    under ``vmap`` (PPO with two seeds in one vmap never finished).
    """
    size = strictly_lower.shape[-1]
    padded = 1 << (size - 1).bit_length()  # next power of two
    widths = [(0, 0)] * (strictly_lower.ndim - 2) + [(0, padded - size)] * 2
    lower = jnp.pad(strictly_lower, widths)
    index = jnp.arange(padded)
    inverse = jnp.broadcast_to(jnp.eye(padded, dtype=lower.dtype), lower.shape)
    block = 1
    while block < padded:
        # Entries (i, j) in the lower-left block of a diagonal block of size 2 * block.
        same_pair = index[:, None] // (2 * block) == index[None, :] // (2 * block)
        lower_left = (
            same_pair & (index[:, None] // block % 2 == 1) & (index[None, :] // block % 2 == 0)
        )
        # inverse is block diagonal (blocks of size block), so this is -T22 L21 T11 per pair.
        off = jnp.einsum(
            "...ij,...jk,...kl->...il", inverse, jnp.where(lower_left, lower, 0.0), inverse
        )
        inverse = inverse - off
        block *= 2
    return inverse[..., :size, :size]


def chunked_delta_rule(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    betas: jax.Array,
    log_decay: jax.Array,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    chunk_size: int = 64,
) -> tuple[jax.Array, jax.Array]:
    """Run the gated delta rule over a sequence.

    Args:
        queries, keys: ``[B, T, H, K]``; keys are expected L2-normalised (with
            ``b_t`` in ``[0, 2]`` the transition is then a contraction).
        values: ``[B, T, H, V]``.
        betas: write strengths ``b_t: [B, T, H]``.
        log_decay: ``log a_t: [B, T, H]``, finite and ``<= 0``.
        episode_starts: ``[B, T]`` bool; the state is zeroed before these steps.
        initial_state: ``S_{-1}: [B, H, K, V]``.
        chunk_size: steps per chunk (``min(chunk_size, T)`` is used).

    Returns:
        ``(S_{T-1} [B, H, K, V], y [B, T, H, V])``.
    """
    batch, steps, heads = queries.shape[:3]
    size = max(1, min(chunk_size, steps))
    num_chunks = -(-steps // size)
    # Padded steps have b = 0 and decay 1: they write nothing and keep the state.
    pad = num_chunks * size - steps
    q, k, v, beta, g, starts = (
        _pad_time(x, pad) for x in (queries, keys, values, betas, log_decay, episode_starts)
    )

    def chunked(x: jax.Array) -> jax.Array:
        # [B, T, H, ...] -> [B, N, H, C, ...]: chunk-internal matrices batch over (B, N, H).
        x = jnp.reshape(x, (batch, num_chunks, size, *x.shape[2:]))
        return jnp.swapaxes(x, 2, 3)

    q, k, v, beta, g = (chunked(x) for x in (q, k, v, beta, g))
    # segment[i]: episode starts in the chunk up to and including step i; steps i and
    # j share an episode iff their segments are equal.
    segment = jnp.cumsum(jnp.reshape(starts, (batch, num_chunks, size)).astype(jnp.int32), -1)
    segment = segment[:, :, None, :]  # [B, N, 1, C], broadcast over heads
    causal = jnp.tril(jnp.ones((size, size), bool))
    pair = (segment[..., :, None] == segment[..., None, :]) & causal  # [B, N, 1, C, C]
    # cumulative[i]: log decay from the chunk start, or from the last episode start if
    # later, through i. Summed with the 0/1 pair mask so earlier episodes never enter.
    cumulative = jnp.einsum("bnxij,bnhj->bnhi", pair.astype(g.dtype), g)  # [B, N, H, C]
    gap = _masked_exp(pair, cumulative[..., :, None] - cumulative[..., None, :])  # g_i / g_j
    from_start = _masked_exp(segment == 0, cumulative)  # g_i, 0 after a start in the chunk

    # UT transform: solve (I + A) [W | U'] = [diag(b g) K | diag(b) V] within each chunk.
    strictly_lower = gap * (1.0 - jnp.eye(size, dtype=gap.dtype))
    a = beta[..., :, None] * jnp.einsum("bnhik,bnhjk->bnhij", k, k) * strictly_lower
    rhs = jnp.concatenate([(beta * from_start)[..., None] * k, beta[..., None] * v], axis=-1)
    solved = jnp.einsum("bnhij,bnhjd->bnhid", _unit_lower_inverse(a), rhs)
    w, free_values = jnp.split(solved, [k.shape[-1]], axis=-1)

    # The chunk maps its incoming state S to M S + N, with
    # M = g_C I - K_d^T W and N = K_d^T U', where K_d = diag(g_C / g_j) K.
    last = segment[..., -1:]
    key_weight = _masked_exp(segment == last, cumulative[..., -1:] - cumulative)  # [B, N, H, C]
    decayed_keys = key_weight[..., None] * k
    carried = _masked_exp(last == 0, cumulative[..., -1:])[..., None]  # [B, N, H, 1, 1]
    eye = jnp.eye(k.shape[-1], dtype=k.dtype)
    transition = carried * eye - jnp.einsum("bnhck,bnhcl->bnhkl", decayed_keys, w)
    added = jnp.einsum("bnhck,bnhcv->bnhkv", decayed_keys, free_values)

    # Across chunks, a short sequential scan (T / C steps) threads the state.
    def across(state: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        matrix, add = xs
        return jnp.einsum("bhkl,bhlv->bhkv", matrix, state) + add, state

    initial_state = initial_state.astype(added.dtype)
    if num_chunks == 1:
        # One chunk (acting, short training sequences): no loop to compile.
        final, _ = across(initial_state, (transition[:, 0], added[:, 0]))
        before = initial_state[:, None]
    else:
        final, before = jax.lax.scan(
            across, initial_state, (jnp.swapaxes(transition, 0, 1), jnp.swapaxes(added, 0, 1))
        )
        before = jnp.swapaxes(before, 0, 1)  # state entering each chunk [B, N, H, K, V]

    # With S_0 known, the new values and the read-out are again parallel in the chunk.
    new_values = free_values - jnp.einsum("bnhck,bnhkv->bnhcv", w, before)
    scores = jnp.einsum("bnhik,bnhjk->bnhij", q, k) * gap
    outputs = jnp.einsum("bnhij,bnhjv->bnhiv", scores, new_values)
    outputs = outputs + jnp.einsum("bnhi,bnhik,bnhkv->bnhiv", from_start, q, before)
    outputs = jnp.swapaxes(outputs, 2, 3)  # [B, N, C, H, V]
    outputs = jnp.reshape(outputs, (batch, num_chunks * size, heads, values.shape[-1]))
    return final, outputs[:, :steps]
