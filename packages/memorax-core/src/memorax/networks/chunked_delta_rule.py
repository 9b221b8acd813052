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

from memorax.networks.chunked_linear_attention import pad_time


def _masked_exp(mask: jax.Array, log_value: jax.Array) -> jax.Array:
    """``exp(log_value)`` where ``mask``, else 0, with finite gradients everywhere.

    Masked entries may hold large positive logs (decays of other episodes),
    so they are zeroed before ``exp``: a plain ``where`` would still
    differentiate ``exp`` there and give ``0 * inf = nan``.
    """
    return jnp.where(mask, jnp.exp(jnp.where(mask, log_value, 0.0)), 0.0)


def _unit_lower_inverse(strictly_lower: jax.Array) -> jax.Array:
    """``(I + L)^{-1}`` for strictly lower-triangular ``L: [..., C, C]``, by matrix products.

    Blockwise inversion from the diagonal outwards: with the inverses ``T11, T22``
    of two neighbouring diagonal blocks known, the inverse of the block holding
    both is ``[[T11, 0], [-T22 L21 T11, T22]]``. Only those small products are
    formed (``log2 C`` rounds, about ``C^3 / 3`` multiply-adds in all, against
    ``4 C^3`` a round for products of whole ``C x C`` matrices), as stable as
    substitution, and no LAPACK triangular solve: jaxlib 0.10's batched one can
    hang XLA's CPU thread pool under ``vmap`` (PPO with two seeds in one vmap
    never finished).
    """
    size = strictly_lower.shape[-1]
    padded = 1 << (size - 1).bit_length()  # next power of two
    widths = [(0, 0)] * (strictly_lower.ndim - 2) + [(0, padded - size)] * 2
    lower = jnp.pad(strictly_lower, widths)
    lead = lower.shape[:-2]
    # Inverses of the diagonal blocks, [..., padded / block, block, block]; 1x1 blocks are 1.
    blocks = jnp.ones((*lead, padded, 1, 1), lower.dtype)
    block = 1
    while block < padded:
        pairs = padded // (2 * block)
        grid = jnp.reshape(lower, (*lead, pairs, 2 * block, pairs, 2 * block))
        # The diagonal blocks of size 2 * block, [..., pairs, 2 block, 2 block].
        diagonal = jnp.moveaxis(jnp.diagonal(grid, axis1=-4, axis2=-2), -1, -3)
        upper_inverse, lower_inverse = blocks[..., 0::2, :, :], blocks[..., 1::2, :, :]
        corner = -lower_inverse @ diagonal[..., block:, :block] @ upper_inverse
        blocks = jnp.concatenate(
            [
                jnp.concatenate([upper_inverse, jnp.zeros_like(upper_inverse)], axis=-1),
                jnp.concatenate([corner, lower_inverse], axis=-1),
            ],
            axis=-2,
        )
        block *= 2
    return blocks[..., 0, :size, :size]


@jax.custom_vjp
def _unit_lower_solve(strictly_lower: jax.Array, rhs: jax.Array) -> jax.Array:
    """``(I + L)^{-1} R`` for strictly lower-triangular ``L: [..., C, C]``, ``R: [..., C, D]``.

    The backward pass uses the inverse saved by the forward one (two matrix
    products) instead of differentiating the ``log2 C`` rounds that built it.
    """
    return _unit_lower_inverse(strictly_lower) @ rhs


def _unit_lower_solve_forward(
    strictly_lower: jax.Array, rhs: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    inverse = _unit_lower_inverse(strictly_lower)
    solved = inverse @ rhs
    return solved, (inverse, solved)


def _unit_lower_solve_backward(
    residuals: tuple[jax.Array, jax.Array], cotangent: jax.Array
) -> tuple[jax.Array, jax.Array]:
    # X = (I + L)^{-1} R gives dX = (I + L)^{-1} (dR - dL X): so the cotangent of R is
    # (I + L)^{-T} G, and that of L its product with -X^T on L's strictly lower part
    # (the only entries the forward pass reads).
    inverse, solved = residuals
    rhs_cotangent = jnp.swapaxes(inverse, -1, -2) @ cotangent
    lower_cotangent = jnp.tril(-rhs_cotangent @ jnp.swapaxes(solved, -1, -2), -1)
    return lower_cotangent, rhs_cotangent


_unit_lower_solve.defvjp(_unit_lower_solve_forward, _unit_lower_solve_backward)


def chunked_delta_rule(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    betas: jax.Array,
    log_decay: jax.Array | None,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    chunk_size: int = 64,
    read_every: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Run the gated delta rule over a sequence.

    Args:
        queries: ``[B, T / read_every, H, K]``, one per read-out.
        keys: ``[B, T, H, K]``, expected L2-normalised (with ``b_t`` in ``[0, 2]``
            the transition is then a contraction).
        values: ``[B, T, H, V]``.
        betas: write strengths ``b_t: [B, T, H]``.
        log_decay: ``log a_t: [B, T, H]``, finite and ``<= 0``; None for no decay
            (DeltaNet), which skips the decay arithmetic.
        episode_starts: ``[B, T]`` bool; the state is zeroed before these steps.
        initial_state: ``S_{-1}: [B, H, K, V]``.
        chunk_size: steps per chunk (``min(chunk_size, T)`` is used).
        read_every: the state is read after every ``read_every``-th step only
            (after steps ``read_every - 1``, ``2 read_every - 1``, ...; DeltaProduct
            reads once per token of several steps). ``T`` and ``chunk_size`` must be
            multiples of it.

    Returns:
        ``(S_{T-1} [B, H, K, V], y [B, T / read_every, H, V])``.
    """
    batch, steps, heads = keys.shape[:3]
    if read_every < 1 or steps % read_every or chunk_size % read_every:
        raise ValueError(
            f"chunked_delta_rule needs read_every >= 1 dividing the sequence length and "
            f"chunk_size, got read_every={read_every}, T={steps}, chunk_size={chunk_size}."
        )
    if steps <= _STEPWISE_STEPS:
        return _stepwise(
            queries, keys, values, betas, log_decay, episode_starts, initial_state, read_every
        )
    size = max(1, min(chunk_size, steps))
    num_chunks = -(-steps // size)
    # Padded steps have b = 0 and decay 1: they write nothing and keep the state.
    pad = num_chunks * size - steps
    k, v, beta, starts = (pad_time(x, pad) for x in (keys, values, betas, episode_starts))

    def chunked(x: jax.Array, length: int = size) -> jax.Array:
        # [B, T, H, ...] -> [B, N, H, C, ...]: chunk-internal matrices batch over (B, N, H).
        x = jnp.reshape(x, (batch, num_chunks, length, *x.shape[2:]))
        return jnp.swapaxes(x, 2, 3)

    k, v, beta = (chunked(x) for x in (k, v, beta))
    q = chunked(pad_time(queries, pad // read_every), size // read_every)
    dtype = k.dtype
    # segment[i]: episode starts in the chunk up to and including step i; steps i and
    # j share an episode iff their segments are equal.
    segment = jnp.cumsum(jnp.reshape(starts, (batch, num_chunks, size)).astype(jnp.int32), -1)
    segment = segment[:, :, None, :]  # [B, N, 1, C], broadcast over heads
    causal = jnp.tril(jnp.ones((size, size), bool))
    pair = (segment[..., :, None] == segment[..., None, :]) & causal  # [B, N, 1, C, C]
    last = segment[..., -1:]
    if log_decay is None:
        # No decay: every ratio of decays is 1 within an episode, so they are the masks.
        gap = pair.astype(dtype)  # g_i / g_j
        from_start = (segment == 0).astype(dtype)  # g_i
        key_weight = (segment == last).astype(dtype)  # g_C / g_j
        carried = (last == 0).astype(dtype)[..., None]  # g_C, [B, N, 1, 1, 1]
    else:
        g = chunked(pad_time(log_decay, pad))
        # cumulative[i]: log decay from the chunk start through i, a product with a constant
        # triangle of ones (one plain matrix product). Decays of earlier episodes are in it
        # too, but every use below is a difference within one episode or lies before the
        # chunk's first start, where they cancel or are absent.
        cumulative = g @ causal.T.astype(dtype)  # [B, N, H, C]
        gap = _masked_exp(pair, cumulative[..., :, None] - cumulative[..., None, :])
        # g_i, 0 after a start in the chunk
        from_start = _masked_exp(segment == 0, cumulative)
        key_weight = _masked_exp(segment == last, cumulative[..., -1:] - cumulative)
        carried = _masked_exp(last == 0, cumulative[..., -1:])[..., None]  # [B, N, H, 1, 1]

    # UT transform: solve (I + A) [W | U'] = [diag(b g) K | diag(b) V] within each chunk.
    strictly_lower = gap * (1.0 - jnp.eye(size, dtype=gap.dtype))
    # Queries' and keys' products with the keys in one matrix product.
    query_scores, key_scores = jnp.split(
        jnp.concatenate([q, k], axis=-2) @ jnp.swapaxes(k, -1, -2), [q.shape[-2]], axis=-2
    )
    a = beta[..., :, None] * key_scores * strictly_lower
    rhs = jnp.concatenate([(beta * from_start)[..., None] * k, beta[..., None] * v], axis=-1)
    solved = _unit_lower_solve(a, rhs)
    w, free_values = jnp.split(solved, [k.shape[-1]], axis=-1)

    # The chunk maps its incoming state S to M S + N, with
    # M = g_C I - K_d^T W and N = K_d^T U', where K_d = diag(g_C / g_j) K.
    # One product for both, K_d^T [W | U'], with K_d^T laid out as a plain [K, C] matrix
    # (a product contracting a leading axis takes a slower path on the CPU).
    # The barrier keeps XLA from folding the transpose back into the product.
    decayed_keys_t = jax.lax.optimization_barrier(jnp.swapaxes(key_weight[..., None] * k, -1, -2))
    mapped_w, added = jnp.split(decayed_keys_t @ solved, [k.shape[-1]], axis=-1)
    eye = jnp.eye(k.shape[-1], dtype=k.dtype)
    transition = carried * eye - mapped_w

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
    read_rows = slice(read_every - 1, None, read_every)  # the steps the queries read after
    scores = query_scores * gap[..., read_rows, :]
    outputs = jnp.einsum("bnhij,bnhjv->bnhiv", scores, new_values)
    outputs = outputs + jnp.einsum(
        "bnhik,bnhkv->bnhiv", from_start[..., read_rows, None] * q, before
    )
    outputs = jnp.swapaxes(outputs, 2, 3)  # [B, N, C / read_every, H, V]
    outputs = jnp.reshape(
        outputs, (batch, num_chunks * size // read_every, heads, values.shape[-1])
    )
    return final, outputs[:, : steps // read_every]


# Sequences this short (acting: one step, or one step of ``n`` Householder factors) run
# the recurrence itself: the chunked form's masks and triangular solve cost more there.
_STEPWISE_STEPS = 4


def _stepwise(
    queries: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    betas: jax.Array,
    log_decay: jax.Array | None,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    read_every: int,
) -> tuple[jax.Array, jax.Array]:
    """:func:`chunked_delta_rule` one step at a time (same arguments and results)."""
    state = initial_state.astype(keys.dtype)
    outputs = []
    for t in range(keys.shape[1]):
        decay = (~episode_starts[:, t, None]).astype(state.dtype)  # [B, 1]
        if log_decay is not None:
            decay = decay * jnp.exp(log_decay[:, t])
        state = decay[..., None, None] * state
        # S <- S + b k (v - S^T k)^T: the memory under k moves a fraction b towards v.
        recalled = jnp.einsum("bhk,bhkv->bhv", keys[:, t], state)
        write = betas[:, t, :, None] * (values[:, t] - recalled)
        state = state + keys[:, t, :, :, None] * write[:, :, None, :]
        if t % read_every == read_every - 1:
            query = queries[:, t // read_every]
            outputs.append(jnp.einsum("bhk,bhkv->bhv", query, state))
    return state, jnp.stack(outputs, axis=1)
