"""ALE backend: observation layout and make's errors."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import EnvironmentKwargsError, UnknownEnvironmentError, make
from memorax_envs_callback.ale import rom_name


def test_observations_are_nhwc_with_frames_as_channels_oldest_first():
    env, params = make("ale::Breakout", num_envs=2, stack_num=3, img_height=60, img_width=50)
    try:
        assert env.observation_space.shape == (60, 50, 3)
        observation, state = env.reset(jax.random.key(0), params)
        assert observation.shape == (2, 60, 50, 3) and observation.dtype == jnp.uint8
        frames = [np.asarray(observation)]
        for key in jax.random.split(jax.random.key(1), 4):
            action = jnp.ones(2, jnp.int32)  # FIRE launches the ball, so frames change
            result = env.step(key, state, action, params)
            state = result.state
            frames.append(np.asarray(result.observation))
        # Each step shifts the stack by one frame: the newest channel moves one to the left.
        for before, after in itertools.pairwise(frames):
            np.testing.assert_array_equal(after[..., :-1], before[..., 1:])
        newest = [frame[..., -1] for frame in frames]
        assert any(not np.array_equal(a, b) for a, b in itertools.pairwise(newest))
    finally:
        env.close()


def test_rgb_frames_are_stacked_frame_major_in_channels():
    env, params = make("ale::Pong", num_envs=1, stack_num=2, grayscale=False)
    try:
        assert env.observation_space.shape == (84, 84, 6)
        observation, _ = env.reset(jax.random.key(0), params)
        assert observation.shape == (1, 84, 84, 6)
    finally:
        env.close()


def test_snake_case_and_camel_case_game_names_match():
    assert rom_name("MsPacman") == "ms_pacman"
    assert rom_name("ms_pacman") == "ms_pacman"
    assert rom_name("Pong") == "pong"


def test_unknown_game_and_misspelt_option_are_clear_errors():
    with pytest.raises(UnknownEnvironmentError, match="no ROM named 'pongg'"):
        make("ale::Pongg")
    with pytest.raises(EnvironmentKwargsError, match="Did you mean 'frameskip'"):
        make("ale::Pong", frame_skip=2)
    with pytest.raises(ValueError, match="autoreset_mode cannot be set"):
        make("ale::Pong", autoreset_mode="NextStep")
