"""Depthwise causal convolution whose window state lives in the carry."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class CausalConv(nn.Module):
    """Depthwise causal 1-D convolution over time with a carried input window.

    ``y_t = bias + sum_j kernel[j] * x_{t - (K-1) + j}``, where inputs from
    before the most recent episode start count as zero. The carry holds the
    last ``K - 1`` inputs, ``[B, K - 1, channels]``, so a sequence split into
    chunks gives exactly the output of the whole sequence.
    """

    channels: int
    kernel_size: int = 4

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, window: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``inputs: [B, T, channels]`` -> ``(new window, outputs [B, T, channels])``."""
        if self.kernel_size < 1:
            raise ValueError(f"CausalConv kernel_size must be >= 1, got {self.kernel_size}.")
        steps = inputs.shape[1]
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(in_axis=0, out_axis=1),
            (self.kernel_size, self.channels),
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.channels,))
        padded = jnp.concatenate([window.astype(inputs.dtype), inputs], axis=1)
        segment = jnp.cumsum(episode_starts.astype(jnp.int32), axis=1)  # [B, T]
        # Carried inputs belong to the episode that is running when the chunk begins.
        padded_segment = jnp.concatenate(
            [jnp.zeros((inputs.shape[0], self.kernel_size - 1), jnp.int32), segment], axis=1
        )
        outputs = jnp.zeros_like(inputs) + bias
        for tap in range(self.kernel_size):
            same_episode = padded_segment[:, tap : tap + steps] == segment
            tap_inputs = jnp.where(same_episode[..., None], padded[:, tap : tap + steps], 0.0)
            outputs = outputs + tap_inputs * kernel[tap]
        # Keep the last K - 1 inputs, zeroing those from before the last start.
        keep = padded_segment[:, steps:] == segment[:, -1:]
        new_window = jnp.where(keep[..., None], padded[:, steps:], 0.0)
        return new_window, outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, kernel_size - 1, channels]``."""
        return jnp.zeros((batch_size, self.kernel_size - 1, self.channels), jnp.float32)
