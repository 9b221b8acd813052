"""POMDP wrappers transform observations consistently and respect episode starts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import FlickerObservation, MaskObservation, NoisyObservation, make


def rollout(env, params, steps):
    observation, state = env.reset(jax.random.key(0), params)

    def body(state, key):
        out = env.step(key, state, jnp.zeros((env.num_envs,), jnp.int32), params)
        done = out.terminated | out.truncated
        return out.state, (out.observation, out.info["final_observation"], done)

    _, outputs = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), steps))
    return np.asarray(observation), jax.tree.map(np.asarray, outputs)


def test_mask_keeps_only_the_listed_dimensions_everywhere():
    env, params = make("test::Countdown-v0", num_envs=3)
    masked = MaskObservation(env, keep=[1])
    first, (observations, finals, _) = rollout(masked, params, 12)
    assert masked.observation_space.shape == (1,)
    assert first.shape == (3, 1) and observations.shape == (12, 3, 1)
    # Dimension 1 is the episode length, which never changes within an episode.
    assert np.all((finals >= 3) & (finals <= 6))


def test_noise_changes_observations_but_keeps_shapes():
    env, params = make("test::Countdown-v0", num_envs=3)
    _, (clean, _, _) = rollout(env, params, 8)
    _, (noisy, _, _) = rollout(NoisyObservation(env, std=0.5), params, 8)
    assert noisy.shape == clean.shape
    # Countdown observations are integers; noise of std 0.5 moves them off the grid.
    assert np.std(noisy - np.round(noisy)) > 0.15


def test_flicker_never_hides_the_first_observation_of_an_episode():
    env, params = make("test::Countdown-v0", num_envs=8)
    flicker = FlickerObservation(env, probability=1.0)
    first, (observations, finals, done) = rollout(flicker, params, 16)
    assert np.all(first != 0)
    # With probability 1, every observation that does not start an episode is blank ...
    assert np.all(observations[~done] == 0)
    # ... and every one that starts an episode (after an auto-reset) is shown.
    assert np.all(observations[done] != 0)
    # The final observation of an ended episode is not a start, so it is blanked.
    assert np.all(finals[done] == 0)


def test_flicker_probability_zero_hides_nothing():
    env, params = make("test::Countdown-v0", num_envs=2)
    first, (observations, _, _) = rollout(FlickerObservation(env, probability=0.0), params, 10)
    # Countdown observations are never all-zero, so any zero would be a blank.
    assert np.all(first != 0) and np.all(observations != 0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda env: MaskObservation(env, keep=[2]), "in \\[0, 2\\)"),
        (lambda env: MaskObservation(env, keep=[]), "distinct"),
        (lambda env: NoisyObservation(env, std=-1.0), "std must be >= 0"),
        (lambda env: FlickerObservation(env, probability=1.5), "must be in \\[0, 1\\]"),
    ],
)
def test_bad_wrapper_arguments_are_clear_errors(build, message):
    env, _ = make("test::Countdown-v0")
    with pytest.raises(ValueError, match=message):
        build(env)
