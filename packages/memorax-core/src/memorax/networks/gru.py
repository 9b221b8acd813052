"""Gated recurrent unit (Cho et al., 2014)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.initializers import orthogonal
from memorax.networks.recurrent_scan import InputWeights, zero_reset_scan
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class GRU(SequenceModel):
    """GRU over ``[B, T, F] -> [B, T, features]``; carry ``h: [B, features]``.

    ``r = sigma(W_r x + U_r h + b_r)``, ``z = sigma(W_z x + U_z h + b_z)``,
    ``n = tanh(W_n x + b_n + r * (U_n h + c_n))``, ``h' = (1 - z) n + z h``.
    The carry starts at zeros and is zeroed at episode starts.
    """

    features: int

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("GRU", inputs, episode_starts)
        size = self.features
        kernel, bias = InputWeights(inputs.shape[-1], 3 * size, name="input")()
        recurrent = self.param("recurrent_kernel", orthogonal(), (size, 3 * size))
        candidate_bias = self.param("candidate_bias", nn.initializers.zeros_init(), (size,))

        def cell(h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
            x_r, x_z, x_n = jnp.split(x @ kernel + bias, 3, axis=-1)
            h_r, h_z, h_n = jnp.split(h @ recurrent, 3, axis=-1)
            r = jax.nn.sigmoid(x_r + h_r)
            z = jax.nn.sigmoid(x_z + h_z)
            n = jnp.tanh(x_n + r * (h_n + candidate_bias))
            h = (1.0 - z) * n + z * h
            return h, h

        return zero_reset_scan(cell, carry, inputs, episode_starts)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, features]``."""
        return jnp.zeros((batch_size, self.features), jnp.float32)
