"""Renderers of the JAX-native backends (what ``memorax record`` draws): MinAtar and craftax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import RenderingNotSupportedError, make


def test_minatar_frames_colour_exactly_the_cells_that_hold_an_object():
    env, params = make("gymnax::SpaceInvaders-MinAtar", num_envs=2)
    observation, state = env.reset(jax.random.key(0), params)
    for key in jax.random.split(jax.random.key(1), 5):  # move the aliens and shoot
        result = env.step(key, state, jnp.array([3, 1]), params)
        observation, state = result.observation, result.state
    frames = jax.jit(env.render)(state, params)
    assert frames.shape == (2, 10, 10, 3) and frames.dtype == jnp.uint8
    occupied = np.asarray(observation).any(axis=-1)
    assert occupied.sum() > 10  # a wave of aliens and the cannon
    np.testing.assert_array_equal(np.asarray(frames).any(axis=-1), occupied)
    # Different kinds of object get different colours.
    assert len(np.unique(np.asarray(frames)[occupied], axis=0)) >= 2


def test_other_gymnax_envs_still_say_they_have_no_renderer():
    env, params = make("gymnax::MemoryChain-bsuite", num_envs=1)
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(RenderingNotSupportedError, match="MinAtar"):
        env.render(state, params)


@pytest.mark.slow
def test_craftax_classic_draws_the_players_view_of_its_own_world():
    env, params = make("craftax::Craftax-Classic-Symbolic-v1", num_envs=2)
    _, state = env.reset(jax.random.key(0), params)
    frames = np.asarray(jax.jit(env.render)(state, params))
    # craftax's renderer at 16 pixels a block: 9 x 9 blocks and the inventory below.
    assert frames.shape == (2, 144, 144, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # textures, not a blank image
    assert not np.array_equal(frames[0], frames[1])  # two different worlds
