"""SAC data-parallel over simulated CPU devices: per-device replay, carries of both critic
copies split along their env axis, same result as one device.

Run through ``nox -s multidevice``, which sets
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before jax starts.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import optax
import pytest

from memorax.algorithms import SAC, SACConfig
from memorax.envs import make
from memorax.networks import (
    GRU,
    MLP,
    ContinuousQNetwork,
    FeatureExtractor,
    Network,
    SquashedGaussian,
)

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
# Continuous actions (reparametrised samples on the split batch), recurrent actor and two
# independent recurrent critics (their carries stacked [2, num_envs, ...]). Sequences of
# 1 burn-in + 2 learned steps: learning starts in the second iteration, once every env copy
# has stored a whole sequence.
CONFIG = SACConfig(
    num_envs=NUM_ENVS, num_steps=2, gradient_steps=2, batch_size=8, buffer_size=8 * 16,
    learning_starts=16, tau=0.5, sequence_length=2, burn_in_length=1,
)  # fmt: skip
NUM_ITERATIONS = 3
TRAIN_STEPS = NUM_ITERATIONS * CONFIG.steps_per_iteration
METRICS = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_value",
           "episode_count", "env_steps", "gradient_steps")  # fmt: skip


def network(head: nn.Module) -> Network:
    return Network(FeatureExtractor(MLP((16,), activation=nn.tanh)), GRU(8), head)


def make_agent(num_devices: int | None, **kwargs) -> SAC:
    config = SACConfig(**{**CONFIG.__dict__, "num_devices": num_devices})
    env, env_params = make("gymnax::Pendulum-v1", num_envs=NUM_ENVS)
    actor, critic = network(SquashedGaussian(1)), network(ContinuousQNetwork((16,)))
    return SAC(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3),
               **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    """Same key and config, on one device and split over four."""
    return train_single_and_sharded(make_agent, TRAIN_STEPS)


def test_sharded_training_matches_single_device_for_the_same_key(runs):
    agent, results, _ = runs
    single, sharded = results["single"], results["sharded"]
    for name in ("actor_params", "critic_params", "target_critic_params", "alpha_params",
                 "actor_optimizer_state", "critic_optimizer_state", "alpha_optimizer_state",
                 "buffer_state", "observation", "actor_carry", "critic_carry"):  # fmt: skip
        assert_trees_close(getattr(single, name), getattr(sharded, name))
    assert_metrics_close(single.metrics, sharded.metrics, METRICS)
    # Gradient steps ran and moved every network, so the comparison is not of two inits.
    assert sharded.metrics["gradient_steps"].tolist() == [0, 2, 4]
    initial = agent.init(jax.random.key(0))
    assert max_change(initial.actor_params, sharded.actor_params) > 1e-4
    assert max_change(initial.critic_params, sharded.critic_params) > 1e-4


def test_env_axis_and_replay_split_over_devices_and_parameters_replicated(runs):
    _, results, _ = runs
    state = results["sharded"]
    assert_env_axis_split(state.buffer_state.experience, NUM_ENVS)
    assert_env_axis_split(
        (state.env_state, state.observation, state.episode_start, state.previous_action,
         state.previous_reward, state.actor_carry),
        NUM_ENVS,
    )  # fmt: skip
    # Two critic copies: their stacked carries are split along the env axis, axis 1.
    assert_env_axis_split(state.critic_carry, NUM_ENVS, axis=1)
    assert_replicated(
        (state.actor_params, state.critic_params, state.target_critic_params,
         state.alpha_params, state.actor_optimizer_state, state.critic_optimizer_state,
         state.alpha_optimizer_state, state.buffer_state.steps, state.env_steps,
         state.gradient_steps, state.metrics)
    )  # fmt: skip


def test_metrics_callback_runs_once_per_iteration_when_sharded(runs):
    _, results, records = runs
    assert [r["update"] for r in records] == [1, 2, 3]
    assert_metrics_close(
        {"critic_loss": [r["critic_loss"] for r in records]},
        results["sharded"].metrics,
        ("critic_loss",),
    )


def test_sharded_training_is_deterministic_for_a_fixed_key(runs):
    agent, results, _ = runs
    again = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), TRAIN_STEPS)
    assert_trees_equal(again.actor_params, results["sharded"].actor_params)
    assert_trees_equal(again.critic_params, results["sharded"].critic_params)


def test_vmap_over_seeds_composes_with_devices(runs):
    """Seeds x devices: seed 0 equal to the single-device run, seed 1 a different run."""
    agent, results, _ = runs
    sharded, seed = train_two_seeds(agent, TRAIN_STEPS)
    # Seeds stay whole on every device; env copies and their replay are split.
    assert spec(sharded.observation)[:2] == (None, "data")
    assert spec(jax.tree.leaves(sharded.buffer_state.experience)[0])[:2] == (None, "data")
    assert spec(jax.tree.leaves(sharded.critic_carry)[0])[:3] == (None, None, "data")
    assert sharded.metrics["update"].shape == (2, NUM_ITERATIONS)
    assert_trees_close(results["single"].actor_params, seed[0].actor_params)
    assert_trees_close(results["single"].critic_params, seed[0].critic_params)
    assert_metrics_close(results["single"].metrics, seed[0].metrics, METRICS)
    assert max_change(seed[0].actor_params, seed[1].actor_params) > 1e-4
