"""R2D2 data-parallel over simulated CPU devices: per-device replay and priorities, one
replicated sum tree, same result as one device.

Run through ``nox -s multidevice``, which sets
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before jax starts.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import R2D2, R2D2Config
from memorax.envs import make
from memorax.networks import GRU, MLP, DiscreteQNetwork, FeatureExtractor, Network

from .sharded_comparison import (
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
# Stored sequences of 1 + 2 + 2 - 1 = 4 steps; learning starts after the first iteration,
# two prioritised gradient steps per iteration, the target network synced every 2 of them.
CONFIG = R2D2Config(
    num_envs=NUM_ENVS, num_steps=4, gradient_steps=2, batch_size=8, buffer_size=8 * 16,
    learning_starts=32, n_step=2, target_update_interval=2, epsilon_decay_steps=64,
    sequence_length=2, burn_in_length=1,
)  # fmt: skip
NUM_ITERATIONS = 3
TRAIN_STEPS = NUM_ITERATIONS * CONFIG.steps_per_iteration
METRICS = ("loss", "q_value", "priority", "epsilon", "episode_count", "env_steps",
           "gradient_steps")  # fmt: skip


def q_network() -> Network:
    return Network(FeatureExtractor(MLP((16,), activation=nn.tanh)), GRU(16), DiscreteQNetwork(2))


def make_agent(num_devices: int | None, **kwargs) -> R2D2:
    config = R2D2Config(**{**CONFIG.__dict__, "num_devices": num_devices})
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    return R2D2(config, env, env_params, q_network(), optax.adam(1e-3), **kwargs)


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
    # Stored steps and carries, priorities, the sum tree and its running maximum.
    assert_trees_close(single.buffer_state, sharded.buffer_state)
    assert_trees_close(single.observation, sharded.observation)
    assert_trees_close(single.carry, sharded.carry)
    assert_metrics_close(single.metrics, sharded.metrics, METRICS)
    # Gradient steps ran and wrote priorities other than the initial 1.0, and moved the
    # parameters, so the comparison above is not of two inits.
    assert sharded.metrics["gradient_steps"].tolist() == [2, 4, 6]
    priorities = np.asarray(sharded.buffer_state.priorities)
    assert np.any((priorities > 0) & (priorities != 1.0))
    assert max_change(agent.init(jax.random.key(0)).params, sharded.params) > 1e-4


def test_each_device_keeps_its_env_copies_replay_and_priorities_with_one_replicated_tree(runs):
    _, results, _ = runs
    state = results["sharded"]
    assert_env_axis_split(state.buffer_state.experience, NUM_ENVS)
    assert_env_axis_split(state.buffer_state.priorities, NUM_ENVS)
    assert_env_axis_split(
        (state.env_state, state.observation, state.episode_start, state.previous_action,
         state.previous_reward, state.carry),
        NUM_ENVS,
    )  # fmt: skip
    assert_replicated(
        (state.buffer_state.tree, state.buffer_state.max_priority, state.buffer_state.steps,
         state.params, state.target_params, state.optimizer_state, state.env_steps,
         state.gradient_steps, state.metrics)
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
    assert_trees_equal(again.buffer_state.tree, results["sharded"].buffer_state.tree)


def test_vmap_over_seeds_composes_with_devices(runs):
    """Seeds x devices: seed 0 equal to the single-device run, seed 1 a different run."""
    agent, results, _ = runs
    sharded, seed = train_two_seeds(agent, TRAIN_STEPS)
    # Seeds stay whole on every device; env copies, their replay and priorities are split.
    assert spec(sharded.observation)[:2] == (None, "data")
    assert spec(sharded.buffer_state.priorities)[:2] == (None, "data")
    assert sharded.buffer_state.tree.nodes.sharding.is_fully_replicated
    assert sharded.metrics["update"].shape == (2, NUM_ITERATIONS)
    assert_trees_close(results["single"].params, seed[0].params)
    assert_trees_close(results["single"].buffer_state.priorities, seed[0].buffer_state.priorities)
    assert_metrics_close(results["single"].metrics, seed[0].metrics, METRICS)
    assert max_change(seed[0].params, seed[1].params) > 1e-4
