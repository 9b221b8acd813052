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
    records: list[dict] = []
    single = make_agent(None)
    sharded = make_agent(NUM_DEVICES, metrics_callback=records.append)
    results = {}
    for name, agent in (("single", single), ("sharded", sharded)):
        results[name] = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), TRAIN_STEPS)
    jax.effects_barrier()
    return sharded, results, records


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
    init_keys = jax.numpy.stack([jax.random.key(0), jax.random.key(2)])
    train_keys = jax.numpy.stack([jax.random.key(1), jax.random.key(3)])
    states = jax.vmap(agent.init)(init_keys)
    sharded = jax.vmap(agent.train, in_axes=(0, 0, None))(train_keys, states, TRAIN_STEPS)
    # Seeds stay whole on every device; env copies (and their replay) are split.
    assert spec(sharded.observation)[:2] == (None, "data")
    assert spec(jax.tree.leaves(sharded.buffer_state.experience)[0])[:2] == (None, "data")
    assert sharded.metrics["update"].shape == (2, NUM_ITERATIONS)
    seed = [jax.tree.map(lambda x, i=i: x[i], sharded) for i in (0, 1)]
    assert_trees_close(results["single"].params, seed[0].params)
    assert_metrics_close(results["single"].metrics, seed[0].metrics, METRICS)
    assert max_change(seed[0].params, seed[1].params) > 1e-4


# ---------------------------------------------------------------- bad input


def test_num_envs_not_divisible_by_num_devices_is_a_clear_error():
    message = r"DQNConfig: num_envs=6 env copies cannot be split evenly over num_devices=4"
    with pytest.raises(ValueError, match=message):
        DQNConfig(num_envs=6, buffer_size=600, num_devices=4)


def test_batch_size_not_divisible_by_num_devices_is_a_clear_error():
    message = r"DQNConfig: batch_size=10 sampled sequences cannot be split evenly over num_dev"
    with pytest.raises(ValueError, match=message):
        DQNConfig(num_envs=8, batch_size=10, num_devices=4)


@pytest.mark.parametrize("num_devices", [0, 2.0, True])
def test_num_devices_must_be_a_positive_int(num_devices):
    with pytest.raises(ValueError, match=r"DQNConfig: num_devices must be a positive integer"):
        DQNConfig(num_envs=8, num_devices=num_devices)


def test_more_devices_than_visible_is_a_clear_error():
    config = DQNConfig(num_envs=16, batch_size=16, num_devices=16)
    env, env_params = make("gymnax::CartPole-v1", num_envs=16)
    with pytest.raises(ValueError, match=r"DQN: num_devices=16 but only 4 JAX device\(s\)"):
        DQN(config, env, env_params, q_network(), optax.adam(1e-3))


def test_callback_env_refuses_data_parallel():
    env, env_params = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    config = DQNConfig(**{**CONFIG.__dict__, "num_devices": NUM_DEVICES})
    try:
        with pytest.raises(ValueError, match=r"DQN: .* callback env, one host env per process"):
            DQN(config, env, env_params, q_network(), optax.adam(1e-3))
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()
