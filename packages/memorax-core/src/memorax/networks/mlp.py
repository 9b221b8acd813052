"""Small feed-forward extractors: an MLP and a one-hot encoder."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.initializers import orthogonal


class MLP(nn.Module):
    """Dense layers with an activation after each, orthogonally initialised.

    Axes after the first ``num_batch_axes`` (default 2: ``[B, T]``) are
    flattened first, so image-like observations ``[B, T, H, W, C]`` work too.
    ``inputs: [B, T, ...] -> [B, T, features[-1]]``.
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    num_batch_axes: int = 2

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        x = jnp.reshape(inputs, (*inputs.shape[: self.num_batch_axes], -1))
        x = x.astype(jnp.float32)
        for width in self.features:
            x = Dense(width, kernel_init=orthogonal(math.sqrt(2.0)))(x)
            x = self.activation(x)
        return x


class OneHot(nn.Module):
    """Encode integer actions ``[B, T]`` as ``[B, T, num_classes]`` floats (no params)."""

    num_classes: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        return jax.nn.one_hot(inputs, self.num_classes, dtype=jnp.float32)
