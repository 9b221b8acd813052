"""PPO on a callback (host) environment: gymnasium's CartPole through the bridge."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import Categorical, VNetwork
from memorax_envs_callback import StaleEnvironmentStateError
from memorax_envs_callback.bridge import CallbackVmapError

from .conftest import mlp_network

CONFIG = PPOConfig(num_envs=4, num_steps=32, num_minibatches=2, update_epochs=2)


def make_agent(config: PPOConfig = CONFIG, lr: float = 1e-3, width: int = 16) -> PPO:
    env, env_params = make("gymnasium::CartPole-v1", num_envs=config.num_envs)
    actor = mlp_network(Categorical(2), width=width)
    critic = mlp_network(VNetwork(), width=width)
    optimizer = optax.adam(lr, eps=1e-5)
    return PPO(config, env, env_params, actor, critic, optimizer, optimizer)


@pytest.fixture(scope="module")
def agent():
    return make_agent()


@pytest.fixture(scope="module")
def trained(agent):
    return agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=256)


def test_evaluate_in_place_restarts_training_and_makes_the_old_state_stale(agent, trained):
    evaluated = agent.evaluate(jax.random.key(2), trained, num_episodes=2)
    assert int(evaluated.evaluation.count) == 8
    np.testing.assert_allclose(evaluated.evaluation.returns, evaluated.evaluation.lengths)
    # The returned state holds a freshly reset training env and keeps training.
    assert bool(evaluated.episode_start.all())
    continued = agent.train(jax.random.key(3), evaluated, num_steps=256)
    assert int(continued.env_steps) == 512
    # The state from before evaluate points at an env that evaluate reset.
    with pytest.raises(StaleEnvironmentStateError):
        agent.train(jax.random.key(3), trained, num_steps=256)


def test_evaluate_on_a_separate_callback_env_leaves_training_env_alone(agent):
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=256)
    eval_env, _ = make("gymnasium::CartPole-v1", num_envs=2)
    evaluated = agent.evaluate(jax.random.key(2), state, env=eval_env)
    assert int(evaluated.evaluation.count) == 2
    # Nothing was reset: the training env carries on from where it was.
    assert int(agent.train(jax.random.key(3), evaluated, num_steps=256).env_steps) == 512


def test_vmap_over_seeds_with_a_callback_env_is_refused(agent):
    with pytest.raises(CallbackVmapError, match="cannot be vmapped over seeds"):
        jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))


@pytest.mark.slow
def test_mlp_agent_balances_gymnasium_cartpole_through_the_bridge():
    agent = make_agent(PPOConfig(num_envs=4, num_steps=128), width=64)
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=76_800)
    state = agent.evaluate(jax.random.key(2), state)
    returns = np.asarray(state.evaluation.returns)
    assert np.nanmean(returns) >= 200, returns
