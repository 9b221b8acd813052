"""End to end: an LSTM acts in an env, its steps are stored, sequences re-unroll from there."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.buffers import SequenceBuffer, Transition
from memorax.networks import LSTM

from ..envs.countdown import make_countdown

NUM_ENVS, STEPS, CAPACITY, LENGTH, FEATURES, BATCH = 2, 24, 16, 5, 8, 16


@pytest.fixture(scope="module")
def collected():
    """Acts for STEPS steps with an LSTM, stores every step, samples BATCH sequences."""
    env, params = make_countdown("Countdown-v0", num_envs=NUM_ENVS, time_limit=4)
    lstm = LSTM(FEATURES)
    buffer = SequenceBuffer(NUM_ENVS, CAPACITY, LENGTH)

    @jax.jit
    def run(key):
        reset_key, init_key, act_key, sample_key = jax.random.split(key, 4)
        observation, env_state = env.reset(reset_key, params)
        carry = lstm.initialize_carry(NUM_ENVS)
        start = jnp.ones(NUM_ENVS, bool)
        lstm_params = lstm.init(init_key, observation[:, None], start[:, None], carry)
        example = Transition(
            observation=observation[0],
            action=jnp.zeros((), jnp.int32),
            reward=jnp.zeros(()),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
            episode_start=jnp.zeros((), bool),
            carry=jax.tree.map(lambda x: x[0], carry),
            next_observation=observation[0],
        )

        def step(loop, key):
            observation, env_state, carry, start, replay = loop
            action_key, step_key = jax.random.split(key)
            new_carry, _ = lstm.apply(lstm_params, observation[:, None], start[:, None], carry)
            action = jax.random.randint(action_key, (NUM_ENVS,), 0, 2)
            result = env.step(step_key, env_state, action, params)
            transition = Transition(
                observation=observation,
                action=action,
                reward=result.reward,
                terminated=result.terminated,
                truncated=result.truncated,
                episode_start=start,
                carry=carry,
                next_observation=result.info["final_observation"],
            )
            replay = buffer.add(replay, jax.tree.map(lambda x: x[:, None], transition))
            done = result.terminated | result.truncated
            return (result.observation, result.state, new_carry, done, replay), None

        loop = (observation, env_state, carry, start, buffer.init(example))
        (*_, replay), _ = jax.lax.scan(step, loop, jax.random.split(act_key, STEPS))
        sample = buffer.sample(replay, sample_key, BATCH)
        # Stored-state unroll: start from the stored carry of each sequence's
        # first step and run over its first LENGTH - 1 steps.
        sequences = sample.experience
        first_carry = jax.tree.map(lambda x: x[:, 0], sequences.carry)
        unrolled, _ = lstm.apply(
            lstm_params,
            sequences.observation[:, :-1],
            sequences.episode_start[:, :-1],
            first_carry,
        )
        return replay, sample, unrolled

    return run(jax.random.key(0))


def test_unrolling_from_the_stored_carry_reproduces_the_carry_stored_later(collected):
    _, sample, unrolled = collected
    stored_last = jax.tree.map(lambda x: x[:, -1], sample.experience.carry)
    for got, want in zip(jax.tree.leaves(unrolled), jax.tree.leaves(stored_last), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_sequences_cross_episode_boundaries_and_keep_the_flags(collected):
    _, sample, _ = collected
    sequences = sample.experience
    starts = np.asarray(sequences.episode_start)
    done = np.asarray(sequences.terminated | sequences.truncated)
    # Episodes last at most 4 steps here, so every 5-step window holds a start.
    assert starts.any(axis=1).all()
    # Where a step ended an episode, the next stored step starts one.
    np.testing.assert_array_equal(starts[:, 1:], done[:, :-1])
    # Not every sequence begins at an episode start.
    assert not starts[:, 0].all()


def test_terminated_and_truncated_are_stored_apart_with_the_bootstrap_observation(collected):
    replay, sample, _ = collected
    stored = replay.experience
    terminated = np.asarray(stored.terminated)
    truncated = np.asarray(stored.truncated)
    assert terminated.any() and truncated.any() and not (terminated & truncated).any()
    sequences = sample.experience
    done = np.asarray(sequences.terminated | sequences.truncated)[:, :-1]
    next_observation = np.asarray(sequences.next_observation)[:, :-1]
    following = np.asarray(sequences.observation)[:, 1:]
    np.testing.assert_array_equal(next_observation[~done], following[~done])
    # At an episode end the bootstrap observation is the ended episode's last, not the reset one.
    assert (next_observation[done] != following[done]).any(axis=-1).all()
