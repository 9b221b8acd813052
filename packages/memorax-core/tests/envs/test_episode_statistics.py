"""Episode returns and lengths across same-step auto-resets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import EpisodeStatistics, InvalidActionError, make


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


def _range_checks(env, params) -> int:
    """How many discrete-action range checks (host callbacks) one jitted step contains."""
    _, state = env.reset(jax.random.key(0), params)
    actions = jnp.ones((env.num_envs,), jnp.int32)
    jaxpr = jax.make_jaxpr(env.step)(jax.random.key(1), state, actions, params)
    return str(jaxpr).count("io_callback")


def test_wrappers_leave_the_action_check_to_the_env_they_wrap():
    # Each check is a conditional with a host callback in every step; a stack of
    # wrappers with the same action space must not repeat it per layer.
    env, params = make("test::Countdown-v0", num_envs=4)
    wrapped = EpisodeStatistics(EpisodeStatistics(env))
    assert _range_checks(env, params) == 1
    assert _range_checks(wrapped, params) == 1
    _, state = wrapped.reset(jax.random.key(0), params)
    bad = jnp.full((4,), 7, jnp.int32)
    with pytest.raises(Exception, match="discrete action out of range"):
        jax.block_until_ready(wrapped.step(jax.random.key(1), state, bad, params).reward)
    with pytest.raises(InvalidActionError, match=r"expected \(4,\)"):
        wrapped.step(jax.random.key(1), state, jnp.ones((3,), jnp.int32), params)
