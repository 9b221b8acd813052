"""PQN learns: small budgets, thresholds a correct agent clears with margin.

The full-budget runs live in ``benchmarks/learning.py``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from memorax.algorithms.pqn import PQN, PQNConfig
from memorax.envs import make

from .test_pqn import make_agent, q_network

pytestmark = pytest.mark.slow


def test_truncation_bootstraps_from_final_observation():
    # CartPole cut at 5 steps never terminates: with reward 1 and gamma 0.9
    # every state is worth 1 / (1 - 0.9) = 10 if truncation bootstraps; treating
    # truncation as termination would give at most 1 + 0.9 + ... + 0.9^4 = 4.1.
    config = PQNConfig(num_envs=8, num_steps=16, num_minibatches=2, gamma=0.9, q_lambda=0.5)
    agent = make_agent(config=config, make_kwargs={"max_steps_in_episode": 5})
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=8_192)
    _, q = agent.network.apply(
        state.params, state.observation[:, None], state.episode_start[:, None]
    )
    assert int(state.metrics["episode_count"].sum()) > 0
    np.testing.assert_allclose(q, 10.0, atol=1.5)


def test_layer_norm_agent_balances_cartpole_within_100k_steps():
    config = PQNConfig(num_envs=32, num_steps=16, q_lambda=0.8, num_minibatches=8,
                       epsilon_decay_steps=30_000)  # fmt: skip
    env, env_params = make("gymnax::CartPole-v1", num_envs=32)
    agent = PQN(config, env, env_params, q_network(width=64), optax.adam(5e-4))
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(1), 2), states, 102_400
    )
    states = jax.vmap(agent.evaluate)(jax.random.split(jax.random.key(2), 2), states)
    returns = np.nanmean(np.asarray(states.evaluation.returns), axis=(1, 2))
    # A random policy lasts ~22 steps; measured: greedy returns 460 and 500 (the maximum).
    assert returns.mean() >= 350, returns
    assert returns.min() >= 200, returns


def test_pqn_balances_gymnasium_cartpole_through_the_callback_bridge():
    # The same agent as above, on gymnasium's CartPole in host processes: one
    # seed (a callback env cannot be vmapped) and a separate env to evaluate on.
    config = PQNConfig(num_envs=32, num_steps=16, q_lambda=0.8, num_minibatches=8,
                       epsilon_decay_steps=30_000)  # fmt: skip
    env, env_params = make("gymnasium::CartPole-v1", num_envs=32)
    eval_env, _ = make("gymnasium::CartPole-v1", num_envs=4)
    agent = PQN(config, env, env_params, q_network(width=64), optax.adam(5e-4))
    with env, eval_env:
        state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), 102_400)
        state = agent.evaluate(jax.random.key(2), state, env=eval_env)
    returns = np.asarray(state.evaluation.returns)
    # A random policy lasts ~22 steps; measured: 500 (the maximum) in all 4 eval envs.
    assert np.nanmean(returns) >= 200, returns
