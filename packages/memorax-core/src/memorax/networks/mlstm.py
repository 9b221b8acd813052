"""mLSTM: the matrix-memory cell of xLSTM (Beck et al., 2024)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.causal_conv import CausalConv
from memorax.networks.chunked_linear_attention import chunked_linear_attention
from memorax.networks.dense import Dense
from memorax.networks.layer_norm import LayerNorm
from memorax.networks.sequence_model import (
    SequenceModel,
    check_head_dim,
    check_sequence_inputs,
)


class MLSTM(SequenceModel):
    """mLSTM layer with a causal convolution on the query/key path.

    Per head: ``C_t = f_t C_{t-1} + i_t k_t v_t^T``, ``n_t = f_t n_{t-1} + i_t k_t``,
    ``h_t = o_t * (C_t^T q_t) / max(|n_t^T q_t|, 1)`` with ``f_t = sigma(f~_t)``
    and ``i_t = exp(i~_t)``. The normaliser ``n`` is an extra value column of
    ``C``, so the layer is gated linear attention and whole sequences run
    chunk by chunk in parallel.

    Deviation from the paper: instead of the running-max stabiliser, the
    input-gate pre-activation is soft-capped (``cap * tanh(i~ / cap)``), which
    bounds ``exp`` in float32 and keeps the step-by-step and parallel forms
    the same function.

    The convolution's last ``conv_kernel - 1`` inputs are part of the carry
    and masked at episode starts, so chunks equal the whole sequence.

    ``[B, T, F] -> [B, T, features]``; carry ``{"conv": [B, conv_kernel - 1, features],
    "memory": [B, num_heads, head_dim, head_dim + 1]}``.
    """

    features: int
    num_heads: int = 4
    conv_kernel: int = 4
    chunk_size: int = 16
    input_gate_cap: float = 15.0

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: dict[str, jax.Array]
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        check_sequence_inputs("MLSTM", inputs, episode_starts)
        head_dim = check_head_dim("MLSTM", self.features, self.num_heads)
        shape = (*inputs.shape[:2], self.num_heads, head_dim)
        x = Dense(self.features, name="in")(inputs)
        conv_carry, conv = CausalConv(self.features, self.conv_kernel, name="conv")(
            x, episode_starts, carry["conv"]
        )
        conv = jax.nn.silu(conv)
        query = jnp.reshape(Dense(self.features, name="query")(conv), shape)
        key = jnp.reshape(Dense(self.features, name="key")(conv), shape) / math.sqrt(head_dim)
        value = jnp.reshape(Dense(self.features, name="value")(x), shape)

        def forget_bias(_key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            # Forget gates start near 1 (sigma(3..6)), so memories persist early on.
            return jnp.linspace(3.0, 6.0, shape[0], dtype=dtype)

        forget = Dense(self.num_heads, bias_init=forget_bias, name="forget_gate")(inputs)
        cap = self.input_gate_cap
        input_gate = Dense(self.num_heads, name="input_gate")(inputs)
        input_gate = jnp.exp(cap * jnp.tanh(input_gate / cap))
        values = jnp.concatenate([value, jnp.ones((*shape[:3], 1), value.dtype)], axis=-1)
        memory, read = chunked_linear_attention(
            query,
            key * input_gate[..., None],
            values,
            jax.nn.log_sigmoid(forget),
            episode_starts,
            carry["memory"],
            self.chunk_size,
        )
        heads = read[..., :head_dim] / jnp.maximum(jnp.abs(read[..., head_dim:]), 1.0)
        heads = LayerNorm(use_bias=False, name="head_norm")(heads)  # per-head norm
        heads = jnp.reshape(heads, (*inputs.shape[:2], -1))
        output_gate = jax.nn.sigmoid(Dense(self.features, name="output_gate")(inputs))
        outputs = Dense(self.features, name="out")(heads * output_gate)
        return {"conv": conv_carry, "memory": memory}, outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> dict[str, jax.Array]:
        """Zero convolution window and zero memory (see the class docstring for shapes)."""
        head_dim = check_head_dim("MLSTM", self.features, self.num_heads)
        return {
            "conv": CausalConv(self.features, self.conv_kernel).initialize_carry(batch_size),
            "memory": jnp.zeros((batch_size, self.num_heads, head_dim, head_dim + 1), jnp.float32),
        }
