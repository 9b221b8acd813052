"""Invertible value rescaling for Q-learning (Pohlen et al., 2018; used by R2D2).

``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` squashes large returns so one
network can regress values of very different scales; its exact inverse is

``h^-1(y) = sign(y) (((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1)``

(``sign(y) ((|y| + 1)^2 - 1)`` for ``eps = 0``). A Q-network trained with
rescaling outputs ``h(Q)``; the n-step target unrescales the bootstrap,
adds the rewards and rescales the sum: ``h(sum_k gamma^k r_k + gamma^n h^-1(Q'))``.
Both functions are odd, strictly increasing and elementwise, so
``argmax_a`` is the same in either space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["inverse_value_rescaling", "value_rescaling"]


def value_rescaling(x: jax.Array, epsilon: float = 1e-3) -> jax.Array:
    """``h(x) = sign(x) (sqrt(|x| + 1) - 1) + epsilon x``, elementwise, any shape."""
    x = jnp.asarray(x, jnp.float32)
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + epsilon * x


def inverse_value_rescaling(y: jax.Array, epsilon: float = 1e-3) -> jax.Array:
    """``h^-1(y)``, the exact inverse of :func:`value_rescaling`, elementwise, any shape."""
    y = jnp.asarray(y, jnp.float32)
    # (sqrt(1 + 4 eps a) - 1) / (2 eps) written as 2 a / (sqrt(1 + 4 eps a) + 1): no
    # cancellation for small eps in float32, and exact for eps = 0.
    a = jnp.abs(y) + 1.0 + epsilon
    root = 2.0 * a / (jnp.sqrt(1.0 + 4.0 * epsilon * a) + 1.0)
    return jnp.sign(y) * (jnp.square(root) - 1.0)
