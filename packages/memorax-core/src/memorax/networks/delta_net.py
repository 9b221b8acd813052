"""DeltaNet and Gated DeltaNet: linear attention that overwrites with the delta rule."""

from __future__ import annotations

import math
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.causal_conv import CausalConv
from memorax.networks.chunked_delta_rule import chunked_delta_rule
from memorax.networks.dense import Dense
from memorax.networks.sequence_model import (
    SequenceModel,
    check_head_dim,
    check_sequence_inputs,
)


def l2_normalize(x: jax.Array, epsilon: float = 1e-6) -> jax.Array:
    """``x / ||x||`` over the last axis (``epsilon`` inside the root keeps zero finite)."""
    return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + epsilon)


class DeltaRuleLayer(SequenceModel):
    """The layer shared by :class:`DeltaNet`, :class:`GatedDeltaNet` and ``DeltaProduct``.

    Per token: ``q, k, v`` projections through a short causal convolution and
    SiLU, L2-normalised queries and keys, write strengths ``b = sigmoid(.)``
    (``2 sigmoid(.)`` with ``negative_eigenvalues``), the (gated) delta rule
    (:func:`~memorax.networks.chunked_delta_rule`) with ``householder_steps``
    keys, values and strengths applied one after the other per token, then a
    per-head RMS norm, an output gate ``SiLU(W_g x)`` and an output projection.

    Subclasses set ``gated``: whether a learned decay ``a_t`` multiplies the
    state (Mamba-2's parameterisation, ``a_t = exp(-exp(A) softplus(.))``).
    """

    gated: ClassVar[bool] = False

    features: int
    num_heads: int = 4
    conv_kernel: int = 4
    # Tokens a chunk; 16 delta-rule steps a chunk was the fastest on a CPU (16 to 64 tried).
    chunk_size: int = 16
    householder_steps: int = 1
    negative_eigenvalues: bool = False
    dt_min: float = 1e-3
    dt_max: float = 1e-1

    @property
    def _channels(self) -> int:
        # One query, and householder_steps keys and values, each features wide.
        return (1 + 2 * self.householder_steps) * self.features

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: dict[str, jax.Array]
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        name = type(self).__name__
        check_sequence_inputs(name, inputs, episode_starts)
        head_dim = check_head_dim(name, self.features, self.num_heads)
        if self.householder_steps < 1:
            raise ValueError(f"{name} needs householder_steps >= 1, got {self.householder_steps}.")
        batch, steps = inputs.shape[:2]
        heads, n = self.num_heads, self.householder_steps
        qkv = Dense(self._channels, use_bias=False, name="qkv")(inputs)
        conv_carry, qkv = CausalConv(self._channels, self.conv_kernel, name="conv")(
            qkv, episode_starts, carry["conv"]
        )
        query, key, value = jnp.split(
            jax.nn.silu(qkv), [self.features, (1 + n) * self.features], axis=-1
        )
        # No 1/sqrt(d) query scale: the per-head RMS norm below cancels it.
        query = l2_normalize(jnp.reshape(query, (batch, steps, heads, head_dim)))
        key = l2_normalize(jnp.reshape(key, (batch, steps, n, heads, head_dim)))
        value = jnp.reshape(value, (batch, steps, n, heads, head_dim))
        beta = jax.nn.sigmoid(Dense(n * heads, name="beta")(inputs))
        if self.negative_eigenvalues:
            # b in (0, 2): I - b k k^T may reflect, not only shrink (Grazzi et al., 2025).
            beta = 2.0 * beta
        beta = jnp.reshape(beta, (batch, steps, n, heads))
        # [B, T, H]; None (no decay arithmetic at all) for DeltaNet.
        log_decay = self._log_decay(inputs) if self.gated else None

        # Householder step j of token t is step t * n + j of a longer delta-rule sequence:
        # the decay and an episode start act on its first step, the query reads its last.
        def interleave(x: jax.Array) -> jax.Array:
            return jnp.reshape(x, (batch, steps * n, *x.shape[3:]))

        first = jnp.arange(n) == 0
        micro_decay = None
        if log_decay is not None:
            micro_decay = interleave(jnp.where(first[:, None], log_decay[:, :, None], 0.0))
        micro_starts = episode_starts[:, :, None] & first
        memory, read = chunked_delta_rule(
            query,
            interleave(key),
            interleave(value),
            interleave(beta),
            micro_decay,
            interleave(micro_starts),
            carry["memory"],
            self.chunk_size * n,
            read_every=n,
        )
        heads_out = nn.RMSNorm(name="head_norm")(read)  # per head, over head_dim
        gate = jax.nn.silu(Dense(self.features, name="output_gate")(inputs))
        outputs = jnp.reshape(heads_out, (batch, steps, self.features)) * gate
        outputs = Dense(self.features, name="out")(outputs)
        return {"conv": conv_carry, "memory": memory}, outputs

    def _log_decay(self, inputs: jax.Array) -> jax.Array:
        """``log a_t: [B, T, num_heads]`` of a gated layer."""

        def dt_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            # softplus(bias) starts log-uniform in [dt_min, dt_max], as in Mamba-2.
            lo, hi = math.log(self.dt_min), math.log(self.dt_max)
            dt = jnp.exp(jax.random.uniform(key, shape, dtype, lo, hi))
            return dt + jnp.log(-jnp.expm1(-dt))  # inverse softplus

        dt = Dense(self.num_heads, use_bias=False, name="decay")(inputs)
        dt = jax.nn.softplus(dt + self.param("dt_bias", dt_bias_init, (self.num_heads,)))
        log_a = self.param(
            "A_log",
            lambda _key, shape: jnp.log(jnp.linspace(1.0, 16.0, shape[0])),
            (self.num_heads,),
        )
        return -jnp.exp(log_a) * dt

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> dict[str, jax.Array]:
        """Zero convolution window and zero memory (see the class docstring for shapes)."""
        head_dim = check_head_dim(type(self).__name__, self.features, self.num_heads)
        return {
            "conv": CausalConv(self._channels, self.conv_kernel).initialize_carry(batch_size),
            "memory": jnp.zeros((batch_size, self.num_heads, head_dim, head_dim), jnp.float32),
        }


class DeltaNet(DeltaRuleLayer):
    """DeltaNet: linear attention whose memory is edited by the delta rule.

    Schlag, Irie & Schmidhuber (2021), "Linear Transformers Are Secretly Fast
    Weight Programmers"; the layer and its chunkwise parallel form follow Yang,
    Wang, Zhang, Shen & Kim (2024), "Parallelizing Linear Transformers with
    the Delta Rule over Sequence Length". Per head,
    ``S_t = (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T`` and ``y_t = S_t^T q_t``:
    each write first removes what the memory held under key ``k_t``, so the
    memory does not saturate the way plain linear attention's does.

    ``q, k, v`` pass a short causal convolution and SiLU; ``q, k`` are
    L2-normalised; ``b_t = sigmoid(W_b x_t)``. The read-out is RMS-normalised
    per head, gated by ``SiLU(W_g x_t)`` and projected. Whole sequences run
    chunk by chunk (WY representation / UT transform within chunks, a scan
    over chunks). An episode start zeroes the memory before that step (a
    decay of 0 there), inside a chunk too; the convolution window in the
    carry is masked the same way.

    ``[B, T, F] -> [B, T, features]``; ``head_dim = features // num_heads``;
    carry ``{"conv": [B, conv_kernel - 1, 3 features],
    "memory": [B, num_heads, head_dim, head_dim]}``.
    """


class GatedDeltaNet(DeltaRuleLayer):
    """Gated DeltaNet: the delta rule with a learned, input-dependent decay.

    Yang, Kautz & Hatamizadeh (2025, ICLR), "Gated Delta Networks: Improving
    Mamba2 with Delta Rule". Per head,
    ``S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T`` and
    ``y_t = S_t^T q_t``, with ``a_t = exp(-exp(A) softplus(W_a x_t + dt_bias))``
    (Mamba-2's decay: ``A`` starts in ``[1, 16]``, ``softplus(dt_bias)`` in
    ``[dt_min, dt_max]``). The decay erases quickly, the delta rule edits
    precisely. The decay's log is cumulated in log space within a chunk and
    only differences are exponentiated, so nothing overflows in float32.

    Otherwise as :class:`DeltaNet`: short causal convolution and SiLU on
    ``q, k, v``, L2-normalised ``q, k``, ``b_t = sigmoid(.)``, per-head RMS
    norm, ``SiLU`` output gate, chunked parallel form, exact episode resets.

    ``[B, T, F] -> [B, T, features]``; carry as :class:`DeltaNet`'s.
    """

    gated: ClassVar[bool] = True
