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


def test_vmapped_seeds_each_train_as_if_alone_on_a_fresh_env():
    """Seed s of a vmapped run equals seed s trained alone on a freshly made env."""
    agent = make_agent()
    init_keys = jax.random.split(jax.random.key(0), 2)
    train_keys = jax.random.split(jax.random.key(1), 2)
    states = jax.vmap(agent.init)(init_keys)
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(train_keys, states, 256)
    assert agent.env.num_host_copies == 2
    np.testing.assert_array_equal(states.env_steps, [256, 256])
    kernels = jax.tree.leaves(states.actor_params)
    assert not np.allclose(kernels[1][0], kernels[1][1]), "seeds must train independently"
    for seed in range(2):
        alone = make_agent()
        state = alone.train(train_keys[seed], alone.init(init_keys[seed]), num_steps=256)
        for got, want in zip(kernels, jax.tree.leaves(state.actor_params), strict=True):
            np.testing.assert_allclose(got[seed], want, rtol=1e-5, atol=1e-6)
        alone.env.close()
    # Evaluation on a separate env under the same vmap: that env builds a pool of its own.
    eval_env, _ = make("gymnasium::CartPole-v1", num_envs=2)
    evaluated = jax.vmap(lambda key, state: agent.evaluate(key, state, env=eval_env))(
        jax.random.split(jax.random.key(2), 2), states
    )
    np.testing.assert_array_equal(evaluated.evaluation.count, [2, 2])
    assert eval_env.num_host_copies == 2
    eval_env.close()
    agent.env.close()


@pytest.mark.slow
def test_mlp_agent_balances_gymnasium_cartpole_through_the_bridge():
    agent = make_agent(PPOConfig(num_envs=4, num_steps=128), width=64)
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=76_800)
    state = agent.evaluate(jax.random.key(2), state)
    returns = np.asarray(state.evaluation.returns)
    assert np.nanmean(returns) >= 200, returns
