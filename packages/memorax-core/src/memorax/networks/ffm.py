"""Fast and forgetful memory (Morad et al., 2023)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.layer_norm import LayerNorm
from memorax.networks.linear_recurrence import linear_recurrence
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class FFM(SequenceModel):
    """Fast and forgetful memory.

    A gated input ``x~_t: [memory_size]`` is accumulated into a complex trace
    ``S_t = gamma * S_{t-1} + x~_t 1^T`` of shape ``[memory_size, context_size]``
    with ``gamma_jk = exp(-|alpha_j| + i omega_k)``. The trace, read as real
    and imaginary parts, is mixed, layer-normalised and gated with a skip
    connection from the input.

    The recurrence is evaluated step by step in its associative form, so it
    needs no absolute time index: a chunk of a sequence gives exactly the
    outputs of the whole sequence, and an episode start resets the trace.

    ``[B, T, F] -> [B, T, features]``; carry ``S: [B, memory_size, context_size]``
    complex64.
    """

    features: int
    memory_size: int = 32
    context_size: int = 4

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("FFM", inputs, episode_starts)
        m, c = self.memory_size, self.context_size
        # Decay rates spread from slow (long memory) to fast, frequencies over [0, pi/2].
        alpha = self.param("alpha", lambda _key, shape: jnp.geomspace(1e-3, 1.0, shape[0]), (m,))
        omega = self.param(
            "omega", lambda _key, shape: jnp.linspace(0.0, math.pi / 2, shape[0]), (c,)
        )
        decay = jnp.exp(-jnp.abs(alpha)[:, None] + 1j * omega[None, :])  # [m, c]

        gated = Dense(m, name="pre")(inputs) * jax.nn.sigmoid(Dense(m, name="input_gate")(inputs))
        update = jnp.broadcast_to(gated[..., None], (*gated.shape, c)).astype(jnp.complex64)
        states = linear_recurrence(decay, update, carry, episode_starts)  # [B, T, m, c]

        trace = jnp.concatenate([states.real, states.imag], axis=-1)
        trace = jnp.reshape(trace, (*trace.shape[:2], 2 * m * c))
        mixed = LayerNorm(name="norm")(Dense(self.features, name="mix")(trace))
        gate = jax.nn.sigmoid(Dense(self.features, name="output_gate")(inputs))
        skip = Dense(self.features, name="skip")(inputs)
        return states[:, -1], mixed * gate + skip * (1.0 - gate)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, memory_size, context_size]`` complex64."""
        return jnp.zeros((batch_size, self.memory_size, self.context_size), jnp.complex64)
