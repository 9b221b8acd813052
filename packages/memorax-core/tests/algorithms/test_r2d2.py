"""R2D2: config and construction checks, value rescaling, sequence priorities, stored-state
replay, truncation bootstraps, target updates, train / evaluate semantics.

One agent is compiled once for the whole module; the checks of the learner's
pieces go through ``R2D2.td_errors``, which is cheap to compile.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import (
    R2D2,
    R2D2_METRIC_NAMES,
    R2D2Config,
    inverse_value_rescaling,
    sequence_priorities,
    value_rescaling,
)
from memorax.algorithms.r2d2 import MIN_PRIORITY
from memorax.buffers import SequenceIndex
from memorax.envs import make
from memorax.networks import GRU, MLP, DiscreteQNetwork, FeatureExtractor, Network

from .conftest import mlp_network

NUM_ENVS = 4
# 16 env steps per iteration; learning starts in the 4th iteration with one gradient step.
CONFIG = R2D2Config(
    num_envs=NUM_ENVS, num_steps=4, gradient_steps=1, batch_size=8, buffer_size=200,
    learning_starts=64, target_update_interval=5, n_step=2, sequence_length=4,
    burn_in_length=2, gamma=0.9, epsilon_decay_steps=1_000,
)  # fmt: skip
ITERATION = CONFIG.steps_per_iteration


def q_network(num_actions: int = 2, width: int = 16) -> Network:
    extractor = FeatureExtractor(MLP((width,), activation=nn.tanh))
    return Network(extractor, GRU(width), DiscreteQNetwork(num_actions))


def make_agent(config: R2D2Config = CONFIG, network: Network | None = None) -> R2D2:
    env, env_params = make("gymnax::CartPole-v1", num_envs=config.num_envs)
    return R2D2(config, env, env_params, network or q_network(), optax.adam(1e-3))


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def agent():
    return make_agent()


@pytest.fixture(scope="module")
def trained(agent):
    """Before and after 4 iterations: the only gradient step is the 4th iteration's."""
    state = agent.init(jax.random.key(0))
    return state, agent.train(jax.random.key(1), state, num_steps=4 * ITERATION)


@pytest.fixture(scope="module")
def td_errors(agent):
    return jax.jit(agent.td_errors)


def sample(agent, state, seed: int = 0):
    return agent.buffer.sample(state.buffer_state, jax.random.key(seed), 16)


# ---------------------------------------------------------------- value rescaling


def test_value_rescaling_round_trips_over_many_magnitudes():
    x = jnp.concatenate([-jnp.logspace(-3, 5, 50), jnp.zeros(1), jnp.logspace(-3, 5, 50)])
    for epsilon in (1e-3, 1e-2, 0.0):
        back = inverse_value_rescaling(value_rescaling(x, epsilon), epsilon)
        np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-6)
        y = jnp.linspace(-50.0, 50.0, 101)
        np.testing.assert_allclose(
            value_rescaling(inverse_value_rescaling(y, epsilon), epsilon), y, rtol=1e-5,
            atol=1e-5,
        )  # fmt: skip


def test_value_rescaling_squashes_like_a_square_root():
    # h(3) = sqrt(4) - 1 + 3 eps; odd; h(0) = 0.
    np.testing.assert_allclose(value_rescaling(jnp.array([3.0, -3.0, 0.0])),
                               [1.003, -1.003, 0.0], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(inverse_value_rescaling(jnp.array([1.0]), 0.0), [3.0])


# ---------------------------------------------------------------- priorities


def test_sequence_priority_mixes_max_and_mean_absolute_td():
    abs_td = jnp.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(sequence_priorities(abs_td, 0.9), [0.9 * 6 + 0.1 * 3, 0.0])
    np.testing.assert_allclose(sequence_priorities(abs_td, 0.0), [3.0, 0.0])


def test_priorities_land_at_the_sampled_starts(agent, trained, td_errors):
    before, after = trained
    buffer, buffer_state = agent.buffer, after.buffer_state
    # Every start got priority 1.0 (the initial maximum) when written; the one
    # gradient step rewrote the starts it sampled, with the init parameters.
    steps = int(buffer_state.steps)  # 16 < capacity: slot == logical step
    written = np.asarray(buffer_state.priorities)[:, :steps]
    changed = np.argwhere(written != 1.0)
    assert 1 <= len(changed) <= CONFIG.batch_size
    slots = changed[:, 1]
    indices = SequenceIndex(jnp.asarray(changed[:, 0], jnp.int32), jnp.asarray(slots, jnp.int32))
    assert np.all(buffer.is_valid(buffer_state, indices))
    experience = buffer.gather(buffer_state, indices)
    td = td_errors(before.params, before.target_params, experience)
    expected = np.maximum(sequence_priorities(jnp.abs(td), CONFIG.priority_eta), MIN_PRIORITY)
    np.testing.assert_allclose(
        np.asarray(buffer_state.priorities)[changed[:, 0], slots], expected, rtol=1e-4
    )


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, r"R2D2Config: num_envs must be a positive integer, got 0"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\], got 0.0"),
        ("n_step", 0, r"n_step must be a positive integer, got 0"),
        ("burn_in_length", -1, r"burn_in_length must be a non-negative integer, got -1"),
        ("priority_eta", 1.5, r"priority_eta must be in \[0, 1\], got 1.5"),
        ("importance_sampling_exponent", -0.1, r"importance_sampling_exponent must be in"),
        ("priority_exponent", -1.0, r"priority_exponent must be a non-negative number"),
        ("value_rescaling", 1, r"value_rescaling must be a bool, got 1"),
        ("stored_state", "yes", r"stored_state must be a bool"),
        ("max_grad_norm", 0.0, r"max_grad_norm must be a positive number or None, got 0.0"),
        ("buffer_size", 402, r"buffer_size=402 must be a multiple of num_envs=4"),
        ("buffer_size", 100, r"keeps buffer_size / num_envs = 25 steps, fewer than one sampled "
                             r"sequence \(burn_in_length \+ sequence_length \+ n_step - 1 = 64"),
    ],
)  # fmt: skip
def test_config_rejects_bad_values_with_a_clear_message(field, value, message):
    with pytest.raises(ValueError, match=message):
        R2D2Config(**{"num_envs": NUM_ENVS, field: value})


def test_num_envs_must_match_the_env():
    env, env_params = make("gymnax::CartPole-v1", num_envs=8)
    with pytest.raises(ValueError, match=r"config.num_envs=4 but gymnax::CartPole-v1 steps 8"):
        R2D2(CONFIG, env, env_params, q_network(), optax.adam(1e-3))


def test_q_head_must_have_one_output_per_action():
    with pytest.raises(ValueError, match=r"DiscreteQNetwork\(3\) does not match"):
        make_agent(network=q_network(num_actions=3))


def test_a_feed_forward_network_is_refused_with_a_pointer_to_dqn():
    with pytest.raises(ValueError, match=r"torso must be a SequenceModel .* got MLP.*use DQN"):
        make_agent(network=mlp_network(DiscreteQNetwork(2)))


def test_optimizer_must_be_an_optax_transformation():
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    with pytest.raises(TypeError, match=r"optimizer must be an optax GradientTransformation"):
        R2D2(CONFIG, env, env_params, q_network(), 1e-3)


# ---------------------------------------------------------------- train


def test_train_counts_env_and_gradient_steps_and_records_every_metric(trained):
    before, after = trained
    assert int(before.env_steps) == 0
    assert int(after.env_steps) == 4 * ITERATION
    # learning_starts=64 env steps: only the 4th iteration learns.
    np.testing.assert_array_equal(after.metrics["gradient_steps"], [0, 0, 0, 1])
    assert set(after.metrics) == set(R2D2_METRIC_NAMES)
    for name in ("loss", "q_value", "priority"):
        assert np.all(np.isnan(after.metrics[name][:3])), name
        assert np.isfinite(after.metrics[name][3]), name
    np.testing.assert_array_equal(after.metrics["update"], [1, 2, 3, 4])
    assert not leaves_equal(before.params, after.params)
    assert int(after.buffer_state.steps) == 4 * CONFIG.num_steps


def test_target_network_is_copied_every_target_update_interval_gradient_steps(agent, trained):
    before, after = trained
    # 1 gradient step (interval 5): the target is still the initial network.
    assert leaves_equal(after.target_params, before.params)
    assert not leaves_equal(after.target_params, after.params)
    # 4 more iterations make 5 gradient steps (but 8 iterations): copied at the 5th.
    later = agent.train(jax.random.key(2), after, num_steps=4 * ITERATION)
    assert int(later.gradient_steps) == 5
    assert leaves_equal(later.target_params, later.params)


def test_train_rejects_fewer_steps_than_one_iteration(agent, trained):
    with pytest.raises(ValueError, match=r"at least num_envs \* config.num_steps = 16"):
        agent.train(jax.random.key(0), trained[0], num_steps=8)


def test_same_key_gives_the_same_result(agent, trained):
    before, after = trained
    again = agent.train(jax.random.key(1), before, num_steps=4 * ITERATION)
    assert leaves_equal(after, again)


# ---------------------------------------------------------------- stored state


def test_replay_stores_the_carry_the_acting_network_was_fed(agent, trained):
    before, after = trained
    stored = after.buffer_state.experience
    # All 16 steps per env were acted with the initial parameters (the one
    # gradient step came after); where step t + 1 continues t's episode, its
    # stored carry is the network's carry after step t.
    step = jax.jit(lambda t: agent.network.apply(
        before.params, stored["observation"][:, t, None], stored["episode_start"][:, t, None],
        stored["carry"][:, t], stored["previous_action"][:, t, None],
        stored["previous_reward"][:, t, None],
    )[0])  # fmt: skip
    for t in range(15):
        same_episode = ~np.asarray(stored["episode_start"][:, t + 1])
        np.testing.assert_allclose(
            np.asarray(step(t))[same_episode], np.asarray(stored["carry"][:, t + 1])[same_episode],
            atol=1e-5,
        )  # fmt: skip
    assert np.abs(np.asarray(stored["carry"][:, 1:16])).max() > 0.01


def test_sequences_start_from_the_stored_carry_unless_stored_state_is_off(
    agent, trained, td_errors
):
    _, after = trained
    experience = sample(agent, after).experience
    noise = jax.random.normal(jax.random.key(9), experience["carry"].shape)
    perturbed = {**experience, "carry": experience["carry"] + noise}
    # The stored carry reaches the learned steps unless an episode starts
    # (and resets the carry) at or before the first of them.
    reset = np.any(np.asarray(experience["episode_start"][:, : CONFIG.burn_in_length + 1]), axis=1)
    assert not reset.all()
    args = (after.params, after.target_params)
    changed = np.any(np.asarray(td_errors(*args, experience))
                     != np.asarray(td_errors(*args, perturbed)), axis=1)  # fmt: skip
    np.testing.assert_array_equal(changed, ~reset)

    zero_state = make_agent(dataclasses.replace(CONFIG, stored_state=False))
    zero_td = jax.jit(zero_state.td_errors)
    np.testing.assert_array_equal(zero_td(*args, experience), zero_td(*args, perturbed))


def test_no_gradient_flows_back_through_the_burn_in(agent, trained):
    _, after = trained
    experience = sample(agent, after).experience

    def learned_q_sum(params, carry):
        td = agent.td_errors(params, after.target_params, {**experience, "carry": carry})
        return jnp.sum(td)  # targets carry no gradient, so this is d sum h(Q(o, a))

    carry_grad, params_grad = jax.jit(jax.grad(learned_q_sum, argnums=(1, 0)))(
        after.params, experience["carry"]
    )
    # The stored carry changes the learned Q-values (see above) but only through
    # the burn-in, which the gradient does not cross; the parameters do get one.
    np.testing.assert_array_equal(carry_grad, 0.0)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(params_grad))


# ---------------------------------------------------------------- targets


def test_truncation_bootstraps_from_final_observation_not_termination(agent, trained, td_errors):
    _, after = trained
    experience = sample(agent, after, seed=3).experience
    end = CONFIG.burn_in_length  # the first learned step ends its episode
    args = (after.params, after.target_params)

    def with_end(terminated: bool, final_scale: float, next_scale: float = 1.0):
        ended = {name: value for name, value in experience.items()}
        ended["done"] = ended["done"].at[:, end].set(True)
        ended["terminated"] = ended["terminated"].at[:, end].set(terminated)
        ended["final_observation"] = ended["final_observation"].at[:, end].multiply(final_scale)
        ended["episode_start"] = ended["episode_start"].at[:, end + 1].set(True)
        ended["observation"] = ended["observation"].at[:, end + 1].multiply(next_scale)
        return np.asarray(td_errors(*args, ended))[:, 0]

    truncated = with_end(False, 1.0)
    # Truncated: the target bootstraps from the final observation...
    assert np.all(with_end(False, 3.0) != truncated)
    # ... not from the next episode's first observation.
    np.testing.assert_allclose(with_end(False, 1.0, next_scale=3.0), truncated, atol=1e-6)
    # Terminated: no bootstrap, the target is the reward alone.
    terminated = with_end(True, 1.0)
    np.testing.assert_allclose(with_end(True, 3.0), terminated, atol=1e-6)


# ---------------------------------------------------------------- evaluate


def test_evaluate_never_touches_buffer_counters_or_parameters(agent, trained):
    _, before = trained
    after = agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert after.evaluation.returns.shape == (NUM_ENVS, 2)
    assert int(after.evaluation.count) == 2 * NUM_ENVS
    np.testing.assert_allclose(after.evaluation.returns, after.evaluation.lengths)
    assert leaves_equal(before.replace(evaluation=None), after.replace(evaluation=None))


def test_evaluate_rejects_a_bad_episode_count(agent, trained):
    with pytest.raises(ValueError, match=r"R2D2.evaluate: num_episodes must be a positive int"):
        agent.evaluate(jax.random.key(3), trained[1], num_episodes=0)
