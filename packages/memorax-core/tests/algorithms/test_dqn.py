"""DQN: config and construction checks, n-step targets, target updates, train/evaluate semantics."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import DQN, DQN_METRIC_NAMES, DQNConfig, n_step_targets
from memorax.envs import make
from memorax.networks import GRU, MLP, DiscreteQNetwork, FeatureExtractor, Network

NUM_ENVS = 4
CONFIG = DQNConfig(
    num_envs=NUM_ENVS, num_steps=4, gradient_steps=2, batch_size=8, buffer_size=400,
    learning_starts=32, target_update_interval=3, n_step=2, epsilon_decay_steps=1_000,
)  # fmt: skip
STEPS_PER_ITERATION = CONFIG.steps_per_iteration


def q_network(num_actions: int = 2, width: int = 16, recurrent: bool = False, dueling=False):
    torso = GRU(width) if recurrent else MLP((width,))
    head = DiscreteQNetwork(num_actions, dueling=dueling)
    return Network(FeatureExtractor(MLP((width,), activation=nn.tanh)), torso, head)


def make_agent(config=CONFIG, network=None, **kwargs):
    env, env_params = make("gymnax::CartPole-v1", num_envs=config.num_envs,
                           **kwargs.pop("make_kwargs", {}))  # fmt: skip
    return DQN(config, env, env_params, network or q_network(), optax.adam(1e-3), **kwargs)


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def agent():
    return make_agent(network=q_network(dueling=True))


@pytest.fixture(scope="module")
def trained(agent):
    """Before and after 4 iterations: learning starts at 32 env steps, i.e. in iteration 2."""
    state = agent.init(jax.random.key(0))
    return state, agent.train(jax.random.key(1), state, num_steps=4 * STEPS_PER_ITERATION)


# ---------------------------------------------------------------- n-step targets


def reference_n_step(rewards, bootstrap, terminated, done, gamma, n):
    batch, length = rewards.shape
    out = np.zeros((batch, length))
    for b in range(batch):
        for t in range(length):
            target = 0.0
            for k in range(n):
                j = t + k
                target += gamma**k * rewards[b, j]
                if done[b, j] or k == n - 1 or j == length - 1:
                    if not terminated[b, j]:
                        target += gamma ** (k + 1) * bootstrap[b, j]
                    break
            out[b, t] = target
    return out


@pytest.mark.parametrize("n", [1, 3])
def test_n_step_targets_match_a_step_by_step_reference(n):
    rng = np.random.default_rng(0)
    shape = (6, 8)
    rewards, bootstrap = rng.normal(size=shape), rng.normal(size=shape)
    terminated = rng.random(shape) < 0.2
    done = terminated | (rng.random(shape) < 0.2)
    got = n_step_targets(
        jnp.asarray(rewards), jnp.asarray(bootstrap), jnp.asarray(terminated),
        jnp.asarray(done), 0.9, n,
    )  # fmt: skip
    np.testing.assert_allclose(got, reference_n_step(rewards, bootstrap, terminated, done, 0.9, n),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_n_step_targets_bootstrap_truncation_but_not_termination():
    rewards = jnp.ones((2, 1))
    bootstrap = jnp.full((2, 1), 10.0)
    terminated = jnp.array([[True], [False]])
    done = jnp.array([[True], [True]])  # row 1 is truncated
    got = n_step_targets(rewards, bootstrap, terminated, done, 0.5, 3)
    np.testing.assert_allclose(got, [[1.0], [6.0]])


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, r"num_envs must be a positive integer, got 0"),
        ("gamma", 1.5, r"gamma must be in \(0, 1\], got 1.5"),
        ("n_step", 0, r"n_step must be a positive integer, got 0"),
        ("target_update_interval", 0, r"target_update_interval must be a positive integer"),
        ("double_q", 1, r"double_q must be a bool, got 1"),
        ("epsilon_start", 2.0, r"epsilon_start must be in \[0, 1\]"),
        ("buffer_size", 402, r"buffer_size=402 must be a multiple of num_envs=4"),
        ("buffer_size", 8, r"per env copy cannot hold one sampled sequence"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(field, value, message):
    with pytest.raises(ValueError, match=message):
        DQNConfig(**{"num_envs": NUM_ENVS, "n_step": 3, field: value})


def test_double_q_is_on_by_default():
    assert DQNConfig(num_envs=1).double_q is True


def test_num_envs_must_match_the_env():
    env, env_params = make("gymnax::CartPole-v1", num_envs=8)
    with pytest.raises(ValueError, match=r"config.num_envs=4 but gymnax::CartPole-v1 steps 8"):
        DQN(CONFIG, env, env_params, q_network(), optax.adam(1e-3))


def test_q_head_must_have_one_output_per_action():
    with pytest.raises(ValueError, match=r"DiscreteQNetwork\(3\) does not match"):
        make_agent(network=q_network(num_actions=3))


def test_sequences_and_burn_in_need_a_recurrent_torso():
    config = DQNConfig(num_envs=NUM_ENVS, sequence_length=4, burn_in_length=2)
    with pytest.raises(ValueError, match=r"needs a recurrent \(SequenceModel\) torso"):
        make_agent(config=config)


# ---------------------------------------------------------------- train


def test_train_counts_env_and_gradient_steps_and_records_every_metric(trained):
    before, after = trained
    assert int(before.env_steps) == 0
    assert int(after.env_steps) == 4 * STEPS_PER_ITERATION
    # Learning starts once 32 env steps are in: iterations 2, 3 and 4 learn.
    np.testing.assert_array_equal(after.metrics["gradient_steps"], [0, 2, 4, 6])
    assert set(after.metrics) == set(DQN_METRIC_NAMES)
    assert np.isnan(after.metrics["loss"][0])
    assert np.all(np.isfinite(after.metrics["loss"][1:]))
    assert not leaves_equal(before.params, after.params)
    assert int(after.buffer_state.steps) == 4 * CONFIG.num_steps


def test_target_network_is_copied_every_target_update_interval_gradient_steps(agent, trained):
    _, after = trained
    # 6 gradient steps with interval 3: the last copy was at step 6.
    assert leaves_equal(after.target_params, after.params)
    one_more = agent.train(jax.random.key(2), after, num_steps=STEPS_PER_ITERATION)
    assert int(one_more.gradient_steps) == 8
    assert leaves_equal(one_more.target_params, after.params)
    assert not leaves_equal(one_more.target_params, one_more.params)


def test_train_rejects_fewer_steps_than_one_iteration(agent, trained):
    with pytest.raises(ValueError, match=r"at least num_envs \* config.num_steps = 16"):
        agent.train(jax.random.key(0), trained[0], num_steps=8)


def test_same_key_gives_the_same_result(agent, trained):
    before, after = trained
    again = agent.train(jax.random.key(1), before, num_steps=4 * STEPS_PER_ITERATION)
    assert leaves_equal(after, again)


def test_vmapped_seeds_train_independently(agent):
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(1), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(0), 2), states, 4 * STEPS_PER_ITERATION
    )
    assert states.metrics["loss"].shape == (2, 4)
    kernels = jax.tree.leaves(states.params)[0]
    assert not np.allclose(kernels[0], kernels[1])


# ---------------------------------------------------------------- evaluate


def test_evaluate_never_touches_buffer_counters_or_parameters(agent, trained):
    _, before = trained
    after = agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert after.evaluation.returns.shape == (NUM_ENVS, 2)
    assert int(after.evaluation.count) == 2 * NUM_ENVS
    np.testing.assert_allclose(after.evaluation.returns, after.evaluation.lengths)
    assert leaves_equal(before.replace(evaluation=None), after.replace(evaluation=None))


# ---------------------------------------------------------------- memory


def test_recurrent_agent_learns_from_burned_in_sequences_and_evaluates():
    config = DQNConfig(
        num_envs=2, num_steps=8, batch_size=4, buffer_size=200, learning_starts=16,
        sequence_length=4, burn_in_length=2, n_step=2,
    )  # fmt: skip
    agent = make_agent(config=config, network=q_network(recurrent=True))
    assert agent.buffer.sequence_length == 2 + 4 + 2 - 1
    before = agent.init(jax.random.key(0))
    after = agent.train(jax.random.key(1), before, num_steps=48)
    assert np.all(np.isfinite(after.metrics["loss"]))
    assert not leaves_equal(before.params, after.params)
    after = agent.evaluate(jax.random.key(2), after)
    assert int(after.evaluation.count) == 2
