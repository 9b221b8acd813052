"""Mamba: a selective state space layer (Gu & Dao, 2023; Dao & Gu, 2024)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.causal_conv import CausalConv
from memorax.networks.chunked_linear_attention import chunked_linear_attention
from memorax.networks.dense import Dense
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class Mamba(SequenceModel):
    """Mamba layer with the Mamba-2 selective SSM (a scalar decay per head).

    ``x, B, C`` go through a causal depthwise convolution and SiLU; per head,
    ``h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t x_t^T`` and
    ``y_t = h_t^T C_t + D x_t``, with input-dependent ``Delta_t = softplus(.)``,
    ``B_t, C_t: [state_size]`` and learned ``A < 0``. The output is gated by
    ``SiLU(z)``, RMS-normalised and projected. A scalar decay per head makes
    the SSM gated linear attention, so whole sequences run chunk by chunk in
    parallel.

    The convolution's last ``conv_kernel - 1`` inputs are part of the carry
    and masked at episode starts, so chunks equal the whole sequence.

    ``[B, T, F] -> [B, T, features]``; inner width ``expand * features`` split
    into heads of ``head_dim``; carry ``{"conv": [B, conv_kernel - 1, inner +
    2 state_size], "ssm": [B, heads, state_size, head_dim]}``.
    """

    features: int
    state_size: int = 16
    head_dim: int = 16
    expand: int = 2
    conv_kernel: int = 4
    chunk_size: int = 64
    dt_min: float = 1e-3
    dt_max: float = 1e-1

    @property
    def _inner(self) -> int:
        inner = self.expand * self.features
        if inner % self.head_dim:
            raise ValueError(
                f"Mamba needs expand * features divisible by head_dim, got "
                f"{self.expand} * {self.features} and head_dim={self.head_dim}."
            )
        return inner

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: dict[str, jax.Array]
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        check_sequence_inputs("Mamba", inputs, episode_starts)
        inner, n = self._inner, self.state_size
        heads = inner // self.head_dim
        batch, steps = inputs.shape[:2]
        projected = Dense(2 * inner + 2 * n + heads, name="in")(inputs)
        gate, xbc, dt = jnp.split(projected, [inner, 2 * inner + 2 * n], axis=-1)
        conv_carry, xbc = CausalConv(inner + 2 * n, self.conv_kernel, name="conv")(
            xbc, episode_starts, carry["conv"]
        )
        x, b, c = jnp.split(jax.nn.silu(xbc), [inner, inner + n], axis=-1)

        def dt_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            # softplus(bias) starts log-uniform in [dt_min, dt_max].
            lo, hi = math.log(self.dt_min), math.log(self.dt_max)
            step = jnp.exp(jax.random.uniform(key, shape, dtype, lo, hi))
            return step + jnp.log(-jnp.expm1(-step))

        step = jax.nn.softplus(dt + self.param("dt_bias", dt_bias_init, (heads,)))
        log_a = self.param(
            "A_log", lambda _key, shape: jnp.log(jnp.linspace(1.0, 16.0, shape[0])), (heads,)
        )
        skip = self.param("D", nn.initializers.ones_init(), (heads,))
        x = jnp.reshape(x, (batch, steps, heads, self.head_dim))
        queries = jnp.broadcast_to(c[:, :, None, :], (batch, steps, heads, n))
        keys = b[:, :, None, :] * step[..., None]
        ssm, y = chunked_linear_attention(
            queries,
            keys,
            x,
            -jnp.exp(log_a) * step,
            episode_starts,
            carry["ssm"],
            self.chunk_size,
        )
        y = y + skip[:, None] * x
        y = jnp.reshape(y, (batch, steps, inner)) * jax.nn.silu(gate)
        outputs = Dense(self.features, name="out")(nn.RMSNorm(name="norm")(y))
        return {"conv": conv_carry, "ssm": ssm}, outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> dict[str, jax.Array]:
        """Zero convolution window and zero SSM state (see the class docstring for shapes)."""
        inner = self._inner
        conv = CausalConv(inner + 2 * self.state_size, self.conv_kernel)
        return {
            "conv": conv.initialize_carry(batch_size),
            "ssm": jnp.zeros(
                (batch_size, inner // self.head_dim, self.state_size, self.head_dim),
                jnp.float32,
            ),
        }
