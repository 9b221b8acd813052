"""PPO learns: small budgets, thresholds a correct agent clears with margin.

The full-budget runs live in ``benchmarks/learning.py``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import Categorical, VNetwork

from .conftest import gru_network, mlp_network

pytestmark = pytest.mark.slow


def train_seeds(agent: PPO, num_seeds: int, num_steps: int, num_episodes: int = 1):
    """Init, train and evaluate ``num_seeds`` seeds in one vmap; returns the final states."""
    init_keys = jax.random.split(jax.random.key(0), num_seeds)
    train_keys = jax.random.split(jax.random.key(1), num_seeds)
    eval_keys = jax.random.split(jax.random.key(2), num_seeds)
    states = jax.vmap(agent.init)(init_keys)
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(train_keys, states, num_steps)
    return jax.vmap(lambda k, s: agent.evaluate(k, s, num_episodes=num_episodes))(eval_keys, states)


def per_seed_return(states) -> np.ndarray:
    return np.nanmean(np.asarray(states.evaluation.returns), axis=(1, 2))


def test_mlp_agent_balances_cartpole_within_100k_steps():
    env, env_params = make("gymnax::CartPole-v1", num_envs=4)
    config = PPOConfig(num_envs=4, num_steps=128)
    actor = mlp_network(Categorical(2), width=64)
    critic = mlp_network(VNetwork(), width=64)
    optimizer = optax.adam(1e-3, eps=1e-5)
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    returns = per_seed_return(train_seeds(agent, num_seeds=2, num_steps=102_400))
    # A random policy lasts ~22 steps; this budget reaches ~500 (the maximum).
    assert returns.mean() >= 300, returns
    assert returns.min() >= 150, returns


def memory_chain_agent(torso: str) -> PPO:
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=16, memory_length=10)
    config = PPOConfig(num_envs=16, num_steps=32)
    build = gru_network if torso == "gru" else mlp_network
    actor = build(Categorical(2), width=32)
    critic = build(VNetwork(), width=32)
    optimizer = optax.adam(1e-3, eps=1e-5)
    return PPO(config, env, env_params, actor, critic, optimizer, optimizer)


@pytest.fixture(scope="module")
def memory_chain_returns():
    """Per seed, the mean training episode return over the last 20 updates (of 100)."""
    returns = {}
    for torso in ("gru", "mlp"):
        agent = memory_chain_agent(torso)
        states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
        states = jax.vmap(agent.train, in_axes=(0, 0, None))(
            jax.random.split(jax.random.key(1), 2), states, 51_200
        )
        episode_return = np.asarray(states.metrics["episode_return"])[:, -20:]
        returns[torso] = np.nanmean(episode_return, axis=1)
    return returns


def test_gru_agent_remembers_the_memory_chain_context(memory_chain_returns):
    # +1 for recalling the context shown 10 steps earlier, -1 otherwise.
    returns = memory_chain_returns["gru"]
    assert returns.mean() >= 0.6, returns


def test_mlp_agent_cannot_remember_the_memory_chain_context(memory_chain_returns):
    # Without memory the final choice is a coin flip: expected return 0.
    returns = memory_chain_returns["mlp"]
    assert abs(returns.mean()) <= 0.25, returns


def test_truncation_bootstraps_from_final_observation():
    # CartPole cut at 5 steps never terminates, so with reward 1 per step and
    # gamma 0.9 every state is worth 1 / (1 - 0.9) = 10 when truncation
    # bootstraps; treating truncation as termination would give at most 4.1.
    env, env_params = make("gymnax::CartPole-v1", num_envs=4, max_steps_in_episode=5)
    config = PPOConfig(num_envs=4, num_steps=32, num_minibatches=2, gamma=0.9,
                       clip_value_loss=False)  # fmt: skip
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    agent = PPO(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(3e-3))
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=3_200)
    _, values = critic.apply(
        state.critic_params, state.observation[:, None], state.episode_start[:, None], None,
        state.previous_action[:, None], state.previous_reward[:, None],
    )  # fmt: skip
    assert int(state.metrics["episode_count"].sum()) > 0
    np.testing.assert_allclose(values, 10.0, atol=1.5)
