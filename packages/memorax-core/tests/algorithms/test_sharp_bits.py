"""The code of the sharp-bits seed document, run as written (plus imports and networks).

Each block of ``shared/SHARP_BITS.md`` is reproduced with only the imports
and the network building added, then the behaviour it describes is
asserted: what must work works, and what must fail fails loudly.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from memorax import PPO, PPOConfig, make
from memorax.networks import Categorical, VNetwork
from memorax_envs_callback import CallbackState, StaleEnvironmentStateError

from .conftest import mlp_network

# `make(...)` in the seed document uses the default num_envs=1.
config = PPOConfig(num_envs=1, num_steps=128)
actor, critic = mlp_network(Categorical(2), width=32), mlp_network(VNetwork(), width=32)
optimizer = optax.adam(3e-4)


def test_reset_resets_the_real_environment_block_runs_and_continues_training():
    env, env_params = make("gymnasium::CartPole-v1")
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    # --- the seed document's block ---
    key = jax.random.key(0)
    key, init_key = jax.random.split(key)
    state = agent.init(init_key)
    key, train_key = jax.random.split(key)
    state = agent.train(train_key, state, num_steps=10_000)

    key, eval_key = jax.random.split(key)
    state = agent.evaluate(eval_key, state)
    # --- end of block ---
    assert env_params is None
    # evaluate reset the real env, so the training env was re-reset after it: reset #1 by
    # init, #2 by the evaluation, #3 the re-reset; no step taken since. (Before evaluate,
    # with these keys: step 9984, episode_start False, previous action and reward 1, and
    # an observation component of 0.069, outside the reset range.)
    statistics = state.env_state  # PPO's episode statistics around the callback env's state
    np.testing.assert_array_equal(statistics.episode_return, 0.0)
    np.testing.assert_array_equal(statistics.episode_length, 0)
    assert isinstance(statistics.env_state, CallbackState)
    assert (int(statistics.env_state.generation), int(statistics.env_state.step)) == (3, 0)
    assert np.asarray(state.episode_start).all()
    np.testing.assert_array_equal(state.previous_action, 0)
    np.testing.assert_array_equal(state.previous_reward, 0.0)
    # A CartPole reset draws every observation component uniformly from [-0.05, 0.05).
    assert np.all(np.abs(np.asarray(state.observation)) <= 0.05)
    # One episode; CartPole pays +1 a step, so its return is its length.
    evaluation = state.evaluation
    assert int(evaluation.count) == 1
    assert np.isfinite(float(evaluation.returns[0, 0]))
    assert float(evaluation.returns[0, 0]) == int(evaluation.lengths[0, 0])
    # Random actions last about 22 steps (1,000 episodes measured: mean 22.2, 99th
    # percentile 60, longest 76). The deterministic policy after this block lasted the
    # full 500 steps; with root keys 1 to 4 instead of 0 it lasted 300, 500, 348, 500
    # (16 more episodes each on a separate env: 225 at the shortest).
    assert int(evaluation.lengths[0, 0]) >= 100
    trained = agent.train(train_key, state, num_steps=1_024)
    assert int(trained.env_steps) == int(state.env_steps) + 1_024


def test_a_state_made_stale_by_evaluate_is_a_clear_error():
    env, env_params = make("gymnasium::CartPole-v1")
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    before = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=256)
    agent.evaluate(jax.random.key(2), before)
    # The env's own error type, not JAX's JaxRuntimeError (which stays its __cause__).
    with pytest.raises(StaleEnvironmentStateError) as caught:
        agent.train(jax.random.key(3), before, num_steps=256)
    assert isinstance(caught.value.__cause__, jax.errors.JaxRuntimeError)
    assert "agent.evaluate(key, state, env=eval_env)" in str(caught.value)


def test_vmap_over_seeds_block_trains_independent_seeds_on_a_jax_native_env():
    env, env_params = make("gymnax::CartPole-v1")
    # --- the seed document's block ---
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    key = jax.random.key(0)
    init = jax.vmap(agent.init)
    train = jax.vmap(agent.train, in_axes=(0, 0, None))
    key, init_key = jax.random.split(key)
    states = init(jax.random.split(init_key, 4))
    key, train_key = jax.random.split(key)
    states = train(jax.random.split(train_key, 4), states, 10_000)
    # --- end of block ---
    np.testing.assert_array_equal(states.env_steps, [9_984] * 4)
    kernels = jax.tree.leaves(states.actor_params)[1]
    assert not np.allclose(kernels[0], kernels[1]), "seeds must train independently"


def test_the_same_vmap_block_trains_independent_seeds_on_a_callback_env():
    # --- the docs' block (docs/sharp-bits.md, "jax.vmap over seeds") ---
    env, env_params = make("gymnasium::CartPole-v1")
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    init = jax.vmap(agent.init)
    train = jax.vmap(agent.train, in_axes=(0, 0, None))
    states = init(jax.random.split(jax.random.key(1), 4))
    states = train(jax.random.split(jax.random.key(2), 4), states, 1_024)
    # --- end of block ---
    np.testing.assert_array_equal(states.env_steps, [1_024] * 4)
    assert env.num_host_copies == 4  # one host env per seed
    kernels = jax.tree.leaves(states.actor_params)[1]
    assert not np.allclose(kernels[0], kernels[1]), "seeds must train independently"
    env.close()


def test_env_params_is_none_and_kwargs_reach_the_host_env():
    env, env_params = make("gymnasium::CartPole-v1", num_envs=2, max_episode_steps=5)
    assert env_params is None
    _, state = env.reset(jax.random.key(0), env_params)
    truncated = []
    for step in range(5):
        out = env.step(jax.random.key(step), state, jax.numpy.zeros(2, jax.numpy.int32))
        state = out.state
        truncated.append(np.asarray(out.truncated) | np.asarray(out.terminated))
    assert np.asarray(truncated)[-1].all()
    env.close()
