"""PatchConv computes nn.Conv(padding="VALID") from the same parameters, gradients included."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import PatchConv

# (input shape, features, kernel, strides): the Nature-DQN layers on a small
# image, a non-square kernel and stride, and two leading batch axes.
CASES = [
    ((2, 20, 20, 4), 8, (8, 8), (4, 4)),
    ((2, 9, 11, 3), 5, (4, 3), (2, 1)),
    ((2, 3, 7, 7, 2), 4, (3, 3), (1, 1)),
]


@pytest.mark.parametrize(("shape", "features", "kernel", "strides"), CASES)
def test_patch_conv_matches_flax_conv_and_its_gradients_for_the_same_parameters(
    shape, features, kernel, strides
):
    x = jax.random.normal(jax.random.key(0), shape)
    patch = PatchConv(features, kernel, strides)
    conv = nn.Conv(features, kernel, strides=strides, padding="VALID")
    params = patch.init(jax.random.key(1), x)
    # Same parameter names and shapes: the checkpoint of one is the other's.
    conv_params = conv.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, conv_params)

    np.testing.assert_allclose(patch.apply(params, x), conv.apply(params, x), rtol=1e-5, atol=1e-5)

    def loss(module):
        return lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))

    patch_grads = jax.grad(loss(patch), argnums=(0, 1))(params, x)
    conv_grads = jax.grad(loss(conv), argnums=(0, 1))(params, x)
    for ours, flax_grad in zip(
        jax.tree.leaves(patch_grads), jax.tree.leaves(conv_grads), strict=True
    ):
        np.testing.assert_allclose(ours, flax_grad, rtol=1e-4, atol=1e-4)


def test_uint8_frames_are_convolved_as_floats():
    frames = jnp.arange(2 * 8 * 8 * 1, dtype=jnp.uint8).reshape(2, 8, 8, 1)
    patch = PatchConv(3, (4, 4), (2, 2))
    params = patch.init(jax.random.key(0), frames)
    out = patch.apply(params, frames)
    assert out.dtype == jnp.float32 and out.shape == (2, 3, 3, 3)
    expected = nn.Conv(3, (4, 4), strides=(2, 2), padding="VALID").apply(
        params, frames.astype(jnp.float32)
    )
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_an_image_smaller_than_the_kernel_is_a_clear_error():
    with pytest.raises(ValueError, match=r"image \(5 x 5\) is smaller than the kernel \(8 x 8\)"):
        PatchConv(4, (8, 8), (4, 4)).init(jax.random.key(0), jnp.zeros((1, 5, 5, 3)))


def test_a_kernel_size_without_two_entries_is_a_clear_error():
    with pytest.raises(ValueError, match="kernel_size and strides must each have two entries"):
        PatchConv(4, (3,)).init(jax.random.key(0), jnp.zeros((1, 5, 5, 3)))
