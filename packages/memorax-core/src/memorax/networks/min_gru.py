"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?")."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.linear_recurrence import linear_recurrence
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class MinGRU(SequenceModel):
    """minGRU: a GRU whose gates read only the input, so it is a linear recurrence.

    ``z_t = sigma(W_z x_t)``, ``h~_t = W_h x_t``,
    ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``; whole sequences use a parallel scan.
    ``[B, T, F] -> [B, T, features]``; carry ``h: [B, features]``.
    """

    features: int

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("MinGRU", inputs, episode_starts)
        gate = jax.nn.sigmoid(Dense(self.features, name="gate")(inputs))
        candidate = Dense(self.features, name="candidate")(inputs)
        states = linear_recurrence(1.0 - gate, gate * candidate, carry, episode_starts)
        return states[:, -1], states

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, features]``."""
        return jnp.zeros((batch_size, self.features), jnp.float32)
