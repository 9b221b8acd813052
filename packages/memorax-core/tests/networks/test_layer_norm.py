"""``memorax.networks.LayerNorm``: interchangeable with ``nn.LayerNorm``, 2-D inside."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import LayerNorm


class _Normed(nn.Module):
    """Two auto-named norms of the given class around a tanh, so names are compared too."""

    norm: type

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return self.norm(use_bias=False)(jnp.tanh(self.norm()(x)) * 3.0)


@pytest.mark.parametrize("shape", [(4,), (6, 4), (2, 7, 4), (2, 3, 2, 4), (0, 3, 4)])
def test_same_parameters_outputs_and_gradients_as_flax_layer_norm(shape):
    inputs = jax.random.normal(jax.random.key(1), shape) * 5.0 + 2.0
    ours = _Normed(LayerNorm).init(jax.random.key(0), inputs)
    flax_params = _Normed(nn.LayerNorm).init(jax.random.key(0), inputs)
    assert jax.tree.structure(ours) == jax.tree.structure(flax_params)
    jax.tree.map(np.testing.assert_array_equal, ours, flax_params)
    outputs = _Normed(LayerNorm).apply(ours, inputs)
    assert outputs.shape == shape
    np.testing.assert_allclose(outputs, _Normed(nn.LayerNorm).apply(ours, inputs), atol=1e-5)

    def loss(module, params):
        return jnp.sum(jnp.sin(module.apply(params, inputs)))

    ours_grad = jax.grad(lambda p: loss(_Normed(LayerNorm), p))(ours)
    flax_grad = jax.grad(lambda p: loss(_Normed(nn.LayerNorm), p))(ours)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), ours_grad, flax_grad)


def test_normalises_only_the_last_axis_when_merging():
    inputs = jnp.arange(24.0).reshape(2, 3, 4) ** 2
    outputs = LayerNorm(use_scale=False, use_bias=False).apply({}, inputs)
    np.testing.assert_allclose(jnp.mean(outputs, axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.var(outputs, axis=-1), 1.0, atol=1e-3)
