"""ALE backend: observation layout and make's errors."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import EnvironmentKwargsError, UnknownEnvironmentError, make
from memorax_envs_callback.ale import AtariScreens, rom_name


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


@pytest.mark.parametrize("sticky", [0.0, 0.25])
def test_recording_screens_show_the_game_the_policy_plays(sticky):
    # With the screen twin's image options equal to one grayscale frame of the agent's
    # size, its frames must equal the newest frame of the agent's stack at every step:
    # both emulators play the same game, sticky actions and no-op starts included.
    same_size = {"stack_num": 1}
    screens = AtariScreens("Breakout", screen_options=same_size, repeat_action_probability=sticky)
    try:
        observation, screen = screens.reset(seed=3)
        assert observation.shape == (84, 84, 4) and screen.shape == (84, 84)
        rng = np.random.default_rng(0)
        rewards, ended = 0.0, False
        for _ in range(400):
            observation, reward, ended, screen = screens.step(rng.integers(4))
            np.testing.assert_array_equal(observation[..., -1], screen)
            rewards += reward
            if ended:
                break
        assert rewards > 0 and ended  # the ball was hit and the game played to its end
    finally:
        screens.close()


def test_recording_screens_are_the_full_colour_atari_screen():
    screens = AtariScreens("Pong", stack_num=2)
    try:
        observation, screen = screens.reset(seed=0)
        assert observation.shape == (84, 84, 2)  # the run's options reach the agent's view
        assert screen.shape == (210, 160, 3) and screen.dtype == np.uint8
        assert len(np.unique(screen.reshape(-1, 3), axis=0)) > 2  # colours, not gray
    finally:
        screens.close()
    with pytest.raises(EnvironmentKwargsError, match="Did you mean 'frameskip'"):
        AtariScreens("Pong", frame_skip=2)
