"""DeltaProduct: several delta-rule steps (Householder reflections) per token."""

from __future__ import annotations

from typing import ClassVar

from memorax.networks.delta_net import DeltaRuleLayer


class DeltaProduct(DeltaRuleLayer):
    """Gated DeltaProduct: per token, a product of ``householder_steps`` delta-rule updates.

    Siems, Carstensen, Zela, Hutter, Pontil & Grazzi (2025), "DeltaProduct:
    Improving State-Tracking in Linear RNNs via Householder Products". Each
    token brings ``n = householder_steps`` keys, values and strengths, and per
    head

    ``S_t = a_t prod_{j=n..1} (I - b_{t,j} k_{t,j} k_{t,j}^T) S_{t-1} + (writes)``,

    i.e. the state takes ``n`` delta-rule steps per token (the decay ``a_t``
    on the first of them), and ``y_t = S_t^T q_t`` is read after the last.
    The transition is a product of ``n`` generalised Householder matrices
    rather than one, so it can express rotations and permutations that one
    rank-1 update per token cannot. With ``negative_eigenvalues`` (the
    default, as in the paper) ``b = 2 sigmoid(.)`` in ``(0, 2)``, so each
    factor may reflect (Grazzi et al., 2025, "Unlocking State-Tracking in
    Linear RNNs Through Negative Eigenvalues").

    Implemented as :class:`GatedDeltaNet` on the sequence of ``T n``
    interleaved steps (same chunked form, exact episode resets on the first
    step of a token), with ``chunk_size`` counting tokens.

    ``[B, T, F] -> [B, T, features]``; ``head_dim = features // num_heads``;
    carry ``{"conv": [B, conv_kernel - 1, (1 + 2 n) features],
    "memory": [B, num_heads, head_dim, head_dim]}``.
    """

    gated: ClassVar[bool] = True

    householder_steps: int = 2
    negative_eigenvalues: bool = True
    # 8 tokens of 2 steps: 16 delta-rule steps a chunk, as DeltaNet's.
    chunk_size: int = 8
