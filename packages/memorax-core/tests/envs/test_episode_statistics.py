"""Episode returns and lengths across same-step auto-resets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs import EpisodeStatistics, make


def run(env, params, steps, action=1):
    observation, state = env.reset(jax.random.key(0), params)

    def body(state, key):
        actions = jnp.full((env.num_envs,), action, jnp.int32)
        out = env.step(key, state, actions, params)
        return out.state, (out.observation, out.info["episode"], out.terminated)

    _, outputs = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), steps))
    return observation, jax.tree.map(np.asarray, outputs)


def test_completed_episodes_report_their_own_return_and_length():
    env, params = make("test::Countdown-v0", num_envs=4)
    first_observation, (observations, episode, terminated) = run(
        EpisodeStatistics(env), params, 20, action=1
    )
    lengths = np.concatenate([np.asarray(first_observation)[None, :, 1], observations[:-1, :, 1]])
    for env_index in range(4):
        ended = np.nonzero(episode["done"][:, env_index])[0]
        assert len(ended) >= 3
        # Each episode lasts exactly the length it was dealt at its start.
        starts = np.concatenate([[0], ended[:-1] + 1])
        np.testing.assert_array_equal(
            episode["length"][ended, env_index], lengths[starts, env_index]
        )
        # Reward is 2 per step with action 1: nothing leaks between episodes.
        np.testing.assert_array_equal(
            episode["return"][ended, env_index], 2.0 * episode["length"][ended, env_index]
        )
    np.testing.assert_array_equal(episode["done"], terminated)
    assert np.all(episode["return"][~episode["done"]] == 0)


def test_truncation_also_completes_an_episode():
    env, params = make("test::Countdown-v0", num_envs=2, time_limit=2)
    _, (_, episode, terminated) = run(EpisodeStatistics(env), params, 6, action=0)
    assert not terminated.any()
    np.testing.assert_array_equal(episode["done"][:, 0], [False, True] * 3)
    np.testing.assert_array_equal(episode["length"][1::2], 2)
    np.testing.assert_array_equal(episode["return"][1::2], 2.0)
