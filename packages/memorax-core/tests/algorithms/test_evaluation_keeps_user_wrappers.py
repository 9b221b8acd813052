"""evaluate() acts in the env the user built, wrappers included, not in the env under them."""

from __future__ import annotations

import jax
import optax
import pytest

from memorax.algorithms import DQN, PPO, DQNConfig, PPOConfig
from memorax.envs import MaskObservation, make
from memorax.networks import Categorical, DiscreteQNetwork, VNetwork

from .conftest import mlp_network


def masked_cartpole(num_envs: int):
    """CartPole with both velocities hidden: observations of 2 features instead of 4."""
    env, env_params = make("gymnax::CartPole-v1", num_envs=num_envs)
    return MaskObservation(env, keep=[0, 2]), env_params


def ppo_agent() -> PPO:
    env, env_params = masked_cartpole(2)
    config = PPOConfig(num_envs=2, num_steps=8, num_minibatches=1, update_epochs=1)
    optimizer = optax.adam(1e-3)
    return PPO(config, env, env_params, mlp_network(Categorical(2)), mlp_network(VNetwork()),
               optimizer, optimizer)  # fmt: skip


def dqn_agent() -> DQN:
    env, env_params = masked_cartpole(2)
    config = DQNConfig(num_envs=2, batch_size=4, buffer_size=64, learning_starts=8)
    return DQN(config, env, env_params, mlp_network(DiscreteQNetwork(2)), optax.adam(1e-3))


@pytest.mark.parametrize("build", [ppo_agent, dqn_agent], ids=["ppo", "dqn"])
def test_evaluate_sees_the_masked_observations_it_was_trained_on(build):
    agent = build()
    state = agent.evaluate(jax.random.key(1), agent.init(jax.random.key(0)), num_episodes=1)
    assert int(state.evaluation.count) >= 2  # one episode in each env copy
    assert float(state.evaluation.lengths.min()) >= 1
