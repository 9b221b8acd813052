"""The non-finite guard: training stops at the first update that makes a parameter NaN/inf."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import DQN, PPO, DQNConfig, NonFiniteError, PPOConfig
from memorax.envs import Wrapper, make
from memorax.networks import Categorical, DiscreteQNetwork, VNetwork

from .conftest import mlp_network

NUM_ENVS = 4
PPO_CONFIG = PPOConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, update_epochs=2)
# Rewards turn NaN in the 5th update's rollout: updates 1-4 are healthy, update 5 is not.
BAD_UPDATE = 5


class NaNRewardAfter(Wrapper):
    """A real env whose rewards are NaN from batch step ``after`` on (a broken reward)."""

    def __init__(self, env, after: int):
        super().__init__(env)
        self.after = after

    def _reset(self, key, params):
        observation, state = self.env.reset(key, params)
        return observation, (state, jnp.zeros((), jnp.int32))

    def _step(self, key, state, action, params):
        inner, count = state
        result = self.env.step(key, inner, action, params)
        reward = jnp.where(count >= self.after, jnp.nan, result.reward)
        return (result.observation, (result.state, count + 1), reward, result.terminated,
                result.truncated, result.info)  # fmt: skip


def _ppo(check_finite: bool = True) -> PPO:
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    env = NaNRewardAfter(env, after=(BAD_UPDATE - 1) * PPO_CONFIG.num_steps + 3)
    config = dataclasses.replace(PPO_CONFIG, check_finite=check_finite)
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    return PPO(config, env, params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def _all_finite(tree) -> bool:
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def guarded_ppo():
    agent = _ppo()
    return agent, agent.init(jax.random.key(0))


def test_ppo_stops_at_the_first_bad_update_and_names_it_and_the_losses(guarded_ppo):
    agent, state = guarded_ppo
    steps_per_update = PPO_CONFIG.steps_per_update
    healthy = agent.train(jax.random.key(1), state, (BAD_UPDATE - 1) * steps_per_update)
    assert _all_finite(healthy.actor_params) and int(healthy.update_count) == BAD_UPDATE - 1
    with pytest.raises(NonFiniteError) as caught:
        agent.train(jax.random.key(2), healthy, 3 * steps_per_update)
    message = str(caught.value)
    assert f"update {BAD_UPDATE} made the parameters NaN or infinite" in message
    assert "value_loss" in message.split("non-finite metric(s):")[1].split(".")[0]
    assert ".actor_params" in message or ".critic_params" in message
    assert "check_finite=False" in message
    # The state passed in is the last good one and can be kept (e.g. checkpointed).
    assert _all_finite(healthy.actor_params) and _all_finite(healthy.critic_params)


def test_ppo_with_the_guard_off_trains_on_into_nan():
    agent = _ppo(check_finite=False)
    state = agent.init(jax.random.key(0))
    state = agent.train(jax.random.key(1), state, (BAD_UPDATE + 1) * PPO_CONFIG.steps_per_update)
    assert int(state.update_count) == BAD_UPDATE + 1
    assert not _all_finite(state.critic_params)
    assert np.isnan(np.asarray(state.metrics["value_loss"])[BAD_UPDATE - 1])


def test_vmapped_seeds_name_the_seeds_that_went_bad(guarded_ppo):
    agent, _ = guarded_ppo
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(3), 2))
    train = jax.vmap(agent.train, in_axes=(0, 0, None))
    keys = jax.random.split(jax.random.key(4), 2)
    # Under vmap train cannot wait for its result: JAX's error carries the message.
    with pytest.raises(Exception, match=r"update 5 in batch element\(s\) 0, 1 of 2"):
        jax.block_until_ready(train(keys, states, 6 * PPO_CONFIG.steps_per_update))


def test_dqn_stops_when_a_nan_reward_reaches_its_updates():
    config = DQNConfig(num_envs=NUM_ENVS, buffer_size=256, batch_size=16, learning_starts=32)
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    env = NaNRewardAfter(env, after=40)
    agent = DQN(config, env, params, mlp_network(DiscreteQNetwork(2)), optax.adam(1e-3))
    state = agent.init(jax.random.key(0))
    with pytest.raises(NonFiniteError, match=r"DQN.train: iteration \d+ made the parameters"):
        agent.train(jax.random.key(1), state, 400 * NUM_ENVS)
