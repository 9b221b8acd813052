"""``memorax.networks.Dense``: interchangeable with ``nn.Dense``, one 2-D matmul inside."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import Dense


class _TwoLayers(nn.Module):
    """Two auto-named dense layers of the given class, so names are compared too."""

    layer: type

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        hidden = self.layer(5, kernel_init=nn.initializers.orthogonal(1.4))(x)
        return self.layer(3)(nn.tanh(hidden))


@pytest.mark.parametrize("shape", [(4,), (6, 4), (2, 7, 4), (2, 3, 2, 4), (0, 3, 4)])
def test_same_parameters_and_outputs_as_flax_dense(shape):
    inputs = jax.random.normal(jax.random.key(1), shape)
    ours = _TwoLayers(Dense).init(jax.random.key(0), inputs)
    flax_params = _TwoLayers(nn.Dense).init(jax.random.key(0), inputs)
    assert jax.tree.structure(ours) == jax.tree.structure(flax_params)
    jax.tree.map(np.testing.assert_array_equal, ours, flax_params)
    outputs = _TwoLayers(Dense).apply(ours, inputs)
    assert outputs.shape == (*shape[:-1], 3)
    expected = _TwoLayers(nn.Dense).apply(ours, inputs)
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)


def _dot_operand_ranks(function, *args) -> list[int]:
    jaxpr = jax.make_jaxpr(function)(*args)

    def walk(jaxpr):
        for equation in jaxpr.eqns:
            if equation.primitive.name == "dot_general":
                yield from (var.aval.ndim for var in equation.invars)
            for sub in jax.core.jaxprs_in_params(equation.params):
                yield from walk(sub)

    return list(walk(jaxpr.jaxpr))


def test_forward_and_gradient_multiply_two_dimensional_arrays():
    # The point of the layer: a [B, T, F] batch (PPO's minibatches are
    # [128, 1, F]) becomes one [B * T, F] matmul forward and backward, which
    # XLA's CPU backend runs without the transposes a 3-D contraction needs.
    inputs = jnp.ones((128, 1, 4))
    layer = Dense(64)
    params = layer.init(jax.random.key(0), inputs)

    def loss(params):
        return jnp.sum(jnp.tanh(layer.apply(params, inputs)))

    # Forward and kernel-gradient matmuls, two operands each, all 2-D.
    assert _dot_operand_ranks(jax.grad(loss), params) == [2, 2, 2, 2]
    flax_layer = nn.Dense(64)
    assert 3 in _dot_operand_ranks(jax.grad(lambda p: jnp.sum(flax_layer.apply(p, inputs))), params)
