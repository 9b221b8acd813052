"""sLSTM: the scalar-memory cell of xLSTM (Beck et al., 2024)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.initializers import orthogonal
from memorax.networks.recurrent_scan import InputWeights, zero_reset_scan
from memorax.networks.sequence_model import (
    SequenceModel,
    check_head_dim,
    check_sequence_inputs,
)

SLSTMCarry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


class SLSTM(SequenceModel):
    """sLSTM with exponential input gating, a normaliser and a log-space stabiliser.

    ``m_t = max(log f_t + m_{t-1}, i~_t)``, ``i_t = exp(i~_t - m_t)``,
    ``f_t = exp(log f_t + m_{t-1} - m_t)``, ``c_t = f_t c_{t-1} + i_t z_t``,
    ``n_t = f_t n_{t-1} + i_t``, ``h_t = o_t c_t / n_t``, with
    ``log f_t = log sigma(f~_t)``. Recurrent weights are block-diagonal over
    ``num_heads`` heads. The recurrence is nonlinear, so it runs step by step.

    ``[B, T, F] -> [B, T, features]``; carry ``(c, n, m, h)``, each ``[B, features]``.
    """

    features: int
    num_heads: int = 4

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: SLSTMCarry
    ) -> tuple[SLSTMCarry, jax.Array]:
        check_sequence_inputs("SLSTM", inputs, episode_starts)
        size, heads = self.features, self.num_heads
        head_dim = check_head_dim("SLSTM", size, heads)

        def bias_init(_key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            # Gate order z, i, f, o; forget gates start open.
            return jnp.zeros(shape, dtype).at[2 * size : 3 * size].set(3.0)

        kernel, bias = InputWeights(inputs.shape[-1], 4 * size, bias_init, name="input")()
        recurrent = self.param("recurrent_kernel", orthogonal(), (heads, head_dim, 4 * head_dim))

        if inputs.shape[1] == 1:
            # Acting: one step does not earn back building the dense matrix.
            def mix(h: jax.Array) -> jax.Array:
                mixed = jnp.einsum("bhd,hde->bhe", jnp.reshape(h, (-1, heads, head_dim)), recurrent)
                # [B, heads, 4 * head_dim] -> [B, 4 * features] in the z, i, f, o layout.
                mixed = jnp.reshape(mixed, (-1, heads, 4, head_dim)).transpose(0, 2, 1, 3)
                return jnp.reshape(mixed, (-1, 4 * size))

        else:
            # The block-diagonal recurrent map as one dense [features, 4 * features]
            # matrix in the z, i, f, o layout, built once outside the loop: one
            # matmul per step instead of a batched einsum and a transpose.
            blocks = jnp.reshape(recurrent, (heads, head_dim, 4, head_dim))
            dense = jnp.einsum("hdge,hk->hdgke", blocks, jnp.eye(heads, dtype=recurrent.dtype))
            dense = jnp.reshape(dense, (size, 4 * size))

            def mix(h: jax.Array) -> jax.Array:
                return h @ dense

        def cell(state: SLSTMCarry, x: jax.Array) -> tuple[SLSTMCarry, jax.Array]:
            c, n, m, h = state
            z, i, f, o = jnp.split(x @ kernel + bias + mix(h), 4, axis=-1)
            log_f = jax.nn.log_sigmoid(f)
            m_new = jnp.maximum(log_f + m, i)
            input_gate = jnp.exp(i - m_new)
            forget_gate = jnp.exp(log_f + m - m_new)
            c = forget_gate * c + input_gate * jnp.tanh(z)
            n = forget_gate * n + input_gate
            # |c| <= n, so the floor only matters if both underflow to zero.
            h = jax.nn.sigmoid(o) * c / jnp.maximum(n, 1e-30)
            return (c, n, m_new, h), h

        return zero_reset_scan(cell, carry, inputs, episode_starts)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> SLSTMCarry:
        """``(c, n, m, h)``, zeros ``[batch_size, features]`` each."""
        zeros = jnp.zeros((batch_size, self.features), jnp.float32)
        return zeros, zeros, zeros, zeros
