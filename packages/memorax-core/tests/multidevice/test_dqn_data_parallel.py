"""DQN data-parallel over simulated CPU devices: per-device replay, same result as one device.

Run through ``nox -s multidevice``, which sets
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before jax starts.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import optax
import pytest

from memorax.algorithms import DQN, DQNConfig
from memorax.envs import make
from memorax.networks import GRU, MLP, DiscreteQNetwork, FeatureExtractor, Network

from .sharded_comparison import (
    NUM_DEVICES,
    assert_env_axis_split,
    assert_metrics_close,
    assert_replicated,
    assert_trees_close,
    assert_trees_equal,
    max_change,
    spec,
    train_single_and_sharded,
    train_two_seeds,
)

NUM_ENVS = 8
# Recurrent, n-step, burn-in: sampled sequences of 1 + 2 + 2 - 1 = 4 stored steps. Learning
# starts after the first iteration; the target network is synced every 2 gradient steps.
CONFIG = DQNConfig(
    num_envs=NUM_ENVS, num_steps=4, gradient_steps=2, batch_size=8, buffer_size=8 * 16,
    learning_starts=32, n_step=2, target_update_interval=2, epsilon_decay_steps=64,
    sequence_length=2, burn_in_length=1,
)  # fmt: skip
NUM_ITERATIONS = 3
TRAIN_STEPS = NUM_ITERATIONS * CONFIG.steps_per_iteration
METRICS = ("loss", "q_value", "epsilon", "episode_count", "env_steps", "gradient_steps")


def q_network() -> Network:
    """A recurrent Q-network: carries to split and sequences to replay."""
    extractor = FeatureExtractor(MLP((16,), activation=nn.tanh))
    return Network(extractor, GRU(16), DiscreteQNetwork(2))


def make_agent(num_devices: int | None, **kwargs) -> DQN:
    config = DQNConfig(**{**CONFIG.__dict__, "num_devices": num_devices})
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    return DQN(config, env, env_params, q_network(), optax.adam(1e-3), **kwargs)


@pytest.fixture(scope="module")
def runs():
    """Same key and config, on one device and split over four."""
    return train_single_and_sharded(make_agent, TRAIN_STEPS)


def test_sharded_training_matches_single_device_for_the_same_key(runs):
    agent, results, _ = runs
    single, sharded = results["single"], results["sharded"]
    assert_trees_close(single.params, sharded.params)
    assert_trees_close(single.target_params, sharded.target_params)
    assert_trees_close(single.optimizer_state, sharded.optimizer_state)
    assert_trees_close(single.buffer_state, sharded.buffer_state)
    assert_trees_close(single.observation, sharded.observation)
    assert_trees_close(single.carry, sharded.carry)
    assert_metrics_close(single.metrics, sharded.metrics, METRICS)
    # Gradient steps ran (learning started after the first iteration) and moved the
    # parameters, so the comparison above is not of two inits.
    assert sharded.metrics["gradient_steps"].tolist() == [2, 4, 6]
    assert max_change(agent.init(jax.random.key(0)).params, sharded.params) > 1e-4


def test_each_device_keeps_the_replay_of_its_own_env_copies(runs):
    _, results, _ = runs
    state = results["sharded"]
    assert_env_axis_split(state.buffer_state.experience, NUM_ENVS)
    assert_env_axis_split(
        (state.env_state, state.observation, state.episode_start, state.previous_action,
         state.previous_reward, state.carry),
        NUM_ENVS,
    )  # fmt: skip
    assert_replicated(
        (state.params, state.target_params, state.optimizer_state, state.buffer_state.steps,
         state.env_steps, state.gradient_steps, state.metrics)
    )  # fmt: skip


def test_metrics_callback_runs_once_per_iteration_when_sharded(runs):
    _, results, records = runs
    assert [r["update"] for r in records] == [1, 2, 3]
    assert_metrics_close(
        {"loss": [r["loss"] for r in records]}, results["sharded"].metrics, ("loss",)
    )


def test_sharded_training_is_deterministic_for_a_fixed_key(runs):
    agent, results, _ = runs
    again = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), TRAIN_STEPS)
    assert_trees_equal(again.params, results["sharded"].params)


def test_vmap_over_seeds_composes_with_devices(runs):
    """Seeds x devices: seed 0 equal to the single-device run, seed 1 a different run."""
    _, results, _ = runs
    agent = make_agent(NUM_DEVICES)
    sharded, seed = train_two_seeds(agent, TRAIN_STEPS)
    # Seeds stay whole on every device; env copies (and their replay) are split.
    assert spec(sharded.observation)[:2] == (None, "data")
    assert spec(jax.tree.leaves(sharded.buffer_state.experience)[0])[:2] == (None, "data")
    assert sharded.metrics["update"].shape == (2, NUM_ITERATIONS)
    assert_trees_close(results["single"].params, seed[0].params)
    assert_metrics_close(results["single"].metrics, seed[0].metrics, METRICS)
    assert max_change(seed[0].params, seed[1].params) > 1e-4
