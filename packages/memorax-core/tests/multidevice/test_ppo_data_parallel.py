"""PPO data-parallel over simulated CPU devices: same result as one device.

Run through ``nox -s multidevice``, which sets
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before jax starts.
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import GRU, MLP, Categorical, FeatureExtractor, Network, VNetwork

from .sharded_comparison import (
    NUM_DEVICES,
    assert_metrics_close,
    assert_trees_close,
    assert_trees_equal,
    max_change,
    spec,
    train_single_and_sharded,
    train_two_seeds,
)

NUM_ENVS = 8
CONFIG = PPOConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, update_epochs=2)
TRAIN_STEPS = 2 * CONFIG.steps_per_update


def network(head: nn.Module, recurrent: bool) -> Network:
    torso = GRU(16) if recurrent else MLP((16,), activation=nn.tanh)
    return Network(FeatureExtractor(MLP((16,), activation=nn.tanh)), torso, head)


def make_agent(num_devices: int | None, recurrent: bool = False, **kwargs) -> PPO:
    config = PPOConfig(**{**CONFIG.__dict__, "num_devices": num_devices})
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    actor, critic = network(Categorical(2), recurrent), network(VNetwork(), recurrent)
    return PPO(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3), **kwargs)


@pytest.fixture(scope="module")
def runs():
    """A recurrent agent (carries, sequence minibatches), same key and config, on one
    device and split over four."""
    return train_single_and_sharded(partial(make_agent, recurrent=True), TRAIN_STEPS)


def test_sharded_training_matches_single_device_for_the_same_key(runs):
    agent, results, _ = runs
    single, sharded = results["single"], results["sharded"]
    assert_trees_close(single.actor_params, sharded.actor_params)
    assert_trees_close(single.critic_params, sharded.critic_params)
    assert_trees_close(single.actor_optimizer_state, sharded.actor_optimizer_state)
    assert_trees_close(single.observation, sharded.observation)
    assert_trees_close(single.actor_carry, sharded.actor_carry)
    assert_metrics_close(
        single.metrics,
        sharded.metrics,
        ("policy_loss", "value_loss", "entropy", "episode_return", "env_steps"),
    )
    # Training moved the parameters, so the comparison above is not of two inits.
    assert max_change(agent.init(jax.random.key(0)).actor_params, sharded.actor_params) > 1e-4


def test_env_axis_is_split_over_devices_and_parameters_replicated(runs):
    _, results, _ = runs
    state = results["sharded"]
    assert len(state.observation.sharding.device_set) == NUM_DEVICES
    for leaf in jax.tree.leaves(
        (state.observation, state.episode_start, state.actor_carry, state.env_state)
    ):
        if leaf.ndim and leaf.shape[0] == NUM_ENVS:
            assert spec(leaf)[0] == "data"
    for leaf in jax.tree.leaves((state.actor_params, state.critic_optimizer_state)):
        assert leaf.sharding.is_fully_replicated


def test_metrics_callback_runs_once_per_update_when_sharded(runs):
    _, results, records = runs
    assert [r["update"] for r in records] == [1, 2]
    np.testing.assert_allclose(
        [r["policy_loss"] for r in records], results["sharded"].metrics["policy_loss"], rtol=1e-6
    )


def test_sharded_training_is_deterministic_for_a_fixed_key(runs):
    agent, results, _ = runs
    again = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), TRAIN_STEPS)
    assert_trees_equal(again.actor_params, results["sharded"].actor_params)


def test_vmap_over_seeds_composes_with_devices():
    """Feed-forward (shuffled transitions): seeds x devices, seed 0 equal to one device."""
    single = make_agent(None)
    reference = single.train(jax.random.key(1), single.init(jax.random.key(0)), TRAIN_STEPS)
    agent = make_agent(NUM_DEVICES)
    sharded, seed = train_two_seeds(agent, TRAIN_STEPS)
    # Seeds stay whole on every device; env copies are split.
    assert spec(sharded.observation)[:2] == (None, "data")
    assert sharded.metrics["update"].shape == (2, 2)
    assert_trees_close(reference.actor_params, seed[0].actor_params)
    assert_trees_close(reference.metrics["policy_loss"], seed[0].metrics["policy_loss"])
    assert max_change(seed[0].actor_params, seed[1].actor_params) > 1e-4
