"""Spaces sample inside themselves and say what they contain."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import Box, Discrete, MultiDiscrete

SPACES = [
    Discrete(4),
    Discrete(3, start=-1),
    MultiDiscrete((2, 5, 3)),
    Box(low=-1.0, high=2.0, shape=(3, 2)),
    Box(low=[0.0, -np.inf], high=[1.0, np.inf]),
    Box(low=0, high=255, shape=(4, 4, 3), dtype=jnp.uint8),
]


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_samples_lie_in_the_space_with_its_shape_and_dtype(space):
    samples = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 64))
    assert samples.shape == (64, *space.shape)
    assert samples.dtype == jnp.dtype(space.dtype)
    assert bool(jnp.all(jax.vmap(space.contains)(samples)))


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_sampling_is_reproducible_for_a_fixed_key(space):
    key = jax.random.key(3)
    np.testing.assert_array_equal(space.sample(key), space.sample(key))


def test_discrete_contains_rejects_out_of_range_and_floats():
    space = Discrete(3, start=1)
    assert bool(space.contains(jnp.int32(1))) and bool(space.contains(jnp.int32(3)))
    assert not bool(space.contains(jnp.int32(0)))
    assert not bool(space.contains(jnp.int32(4)))
    assert not bool(space.contains(jnp.float32(2.0)))


def test_box_contains_checks_shape_and_bounds():
    space = Box(low=-1.0, high=1.0, shape=(2,))
    assert bool(space.contains(jnp.array([0.5, -1.0])))
    assert not bool(space.contains(jnp.array([0.5, 1.5])))
    assert not bool(space.contains(jnp.array([0.5])))


def test_spaces_are_hashable_so_jit_can_close_over_them():
    assert hash(Box(low=0.0, high=1.0, shape=(2,))) == hash(Box(low=0.0, high=1.0, shape=(2,)))
    assert hash(MultiDiscrete((2, 3))) == hash(MultiDiscrete([2, 3]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Discrete(0), "positive number of actions"),
        (lambda: MultiDiscrete((2, 0)), "must be positive"),
        (lambda: Box(low=1.0, high=0.0), "low must be <="),
        (lambda: Box(low=[0.0, 0.0], high=[1.0, 1.0, 1.0]), "do not broadcast"),
    ],
)
def test_invalid_spaces_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
