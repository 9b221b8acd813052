"""Linear attention (Katharopoulos et al., 2020) as a recurrent memory."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.chunked_linear_attention import chunked_linear_attention
from memorax.networks.dense import Dense
from memorax.networks.sequence_model import (
    SequenceModel,
    check_head_dim,
    check_sequence_inputs,
)


class LinearAttention(SequenceModel):
    """Causal linear attention with feature map ``phi(x) = elu(x) + 1``.

    ``y_t = phi(q_t)^T S_t / (phi(q_t)^T z_t + eps)`` with
    ``S_t = S_{t-1} + phi(k_t) v_t^T`` and ``z_t = z_{t-1} + phi(k_t)``,
    per head. The normaliser ``z`` is stored as an extra value column of
    ``S``. Whole sequences are computed chunk by chunk in attention form.

    ``[B, T, F] -> [B, T, features]``; carry
    ``[B, num_heads, head_dim, head_dim + 1]``, ``head_dim = features // num_heads``.
    """

    features: int
    num_heads: int = 4
    chunk_size: int = 32
    epsilon: float = 1e-6

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("LinearAttention", inputs, episode_starts)
        head_dim = check_head_dim("LinearAttention", self.features, self.num_heads)
        shape = (*inputs.shape[:2], self.num_heads, head_dim)
        query = jax.nn.elu(jnp.reshape(Dense(self.features, name="query")(inputs), shape)) + 1
        key = jax.nn.elu(jnp.reshape(Dense(self.features, name="key")(inputs), shape)) + 1
        value = jnp.reshape(Dense(self.features, name="value")(inputs), shape)
        value = jnp.concatenate([value, jnp.ones((*shape[:3], 1), value.dtype)], axis=-1)
        carry, read = chunked_linear_attention(
            query, key, value, None, episode_starts, carry, self.chunk_size
        )
        heads = read[..., :head_dim] / (read[..., head_dim:] + self.epsilon)
        outputs = Dense(self.features, name="out")(jnp.reshape(heads, (*inputs.shape[:2], -1)))
        return carry, outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, num_heads, head_dim, head_dim + 1]``."""
        head_dim = check_head_dim("LinearAttention", self.features, self.num_heads)
        return jnp.zeros((batch_size, self.num_heads, head_dim, head_dim + 1), jnp.float32)
