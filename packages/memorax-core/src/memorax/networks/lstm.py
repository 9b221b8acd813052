"""Long short-term memory (Hochreiter & Schmidhuber, 1997)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.initializers import orthogonal
from memorax.networks.recurrent_scan import InputWeights, zero_reset_scan
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class LSTM(SequenceModel):
    """LSTM over ``[B, T, F] -> [B, T, features]``; carry ``(c, h)``, each ``[B, features]``.

    Gates ``i, f, g, o`` from ``W x + U h + b``; ``c' = f c + i g``,
    ``h' = o tanh(c')``. The forget bias starts at 1 so memories persist
    early in training. The carry starts at zeros and is zeroed at episode starts.
    """

    features: int

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        episode_starts: jax.Array,
        carry: tuple[jax.Array, jax.Array],
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        check_sequence_inputs("LSTM", inputs, episode_starts)
        size = self.features

        def bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            return jnp.zeros(shape, dtype).at[size : 2 * size].set(1.0)

        kernel, bias = InputWeights(inputs.shape[-1], 4 * size, bias_init, name="input")()
        recurrent = self.param("recurrent_kernel", orthogonal(), (size, 4 * size))

        def cell(
            state: tuple[jax.Array, jax.Array], x: jax.Array
        ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
            c, h = state
            i, f, g, o = jnp.split(x @ kernel + bias + h @ recurrent, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h

        return zero_reset_scan(cell, carry, inputs, episode_starts)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> tuple[jax.Array, jax.Array]:
        """``(c, h)``, zeros ``[batch_size, features]`` each."""
        zeros = jnp.zeros((batch_size, self.features), jnp.float32)
        return zeros, zeros
