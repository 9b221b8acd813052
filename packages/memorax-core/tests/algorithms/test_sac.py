"""SAC: config and construction checks, continuous and discrete training, target and
temperature updates, recurrent carries, evaluation, and what truncation bootstraps."""

from __future__ import annotations

import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import SAC, SAC_METRIC_NAMES, SACConfig
from memorax.algorithms.acting import scale_to_box
from memorax.algorithms.checks import box_action_dim
from memorax.envs import Box, Wrapper, make
from memorax.networks import (
    GRU,
    MLP,
    Categorical,
    ContinuousQNetwork,
    DiscreteQNetwork,
    FeatureExtractor,
    Gaussian,
    Network,
    OneHot,
    SquashedGaussian,
    TwinContinuousQNetwork,
    VNetwork,
)

from .conftest import mlp_network


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


class RecordActionRange(Wrapper):
    """Keeps the smallest and largest action the env received in its state."""

    def _reset(self, key, params):
        observation, state = self.env.reset(key, params)
        shape = self.action_space.shape
        return observation, (state, jnp.full(shape, jnp.inf), jnp.full(shape, -jnp.inf))

    def _step(self, key, state, action, params):
        inner, low, high = state
        observation, inner, reward, terminated, truncated, info = self.env.step(
            key, inner, action, params
        )
        low = jnp.minimum(low, jnp.min(action, axis=0))
        high = jnp.maximum(high, jnp.max(action, axis=0))
        return observation, (inner, low, high), reward, terminated, truncated, info


def network(head: nn.Module, torso: nn.Module | None = None, width: int = 16) -> Network:
    """Observation MLP -> torso (an MLP by default) -> ``head``. A memory torso also sees
    the previous action (one-hot, for a discrete head) and reward."""
    if torso is None:
        return Network(FeatureExtractor(MLP((width,), activation=nn.tanh)), MLP((width,)), head)
    extractor = FeatureExtractor(
        MLP((width,), activation=nn.tanh),
        action_extractor=OneHot(head.action_dim),
        reward_extractor=MLP((4,)),
    )
    return Network(extractor, torso, head)


# ---------------------------------------------------------------- agents shared by tests

# Continuous: Pendulum (actions in [-2, 2]); trained one iteration per call.
CONTINUOUS = SACConfig(
    num_envs=4, num_steps=2, batch_size=16, buffer_size=400, learning_starts=16, tau=0.1
)
CONTINUOUS_CALLS = 10

# Recurrent discrete: CartPole, GRU actor and GRU critic of different widths; hard
# target copies every 2 gradient steps; a target entropy above log(2), the most two
# actions can have.
RECURRENT = SACConfig(
    num_envs=2, num_steps=4, batch_size=4, buffer_size=200, learning_starts=16,
    sequence_length=3, burn_in_length=2, tau=1.0, target_update_interval=2,
    target_entropy=1.0,
)  # fmt: skip
RECURRENT_CALLS = 8


@pytest.fixture(scope="module")
def continuous_agent():
    env, env_params = make("gymnax::Pendulum-v1", num_envs=CONTINUOUS.num_envs)
    # ContinuousQNetwork: the agent holds two independent critics.
    actor = network(SquashedGaussian(1))
    critic = network(ContinuousQNetwork((16,)))
    return SAC(CONTINUOUS, RecordActionRange(env), env_params, actor, critic,
               optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip


def train_in_single_iterations(agent: SAC, calls: int) -> list:
    """The initial state, then the state after each of ``calls`` one-iteration trains."""
    states = [agent.init(jax.random.key(0))]
    for key in jax.random.split(jax.random.key(1), calls):
        states.append(agent.train(key, states[-1], num_steps=agent.config.steps_per_iteration))
    return states


@pytest.fixture(scope="module")
def continuous_states(continuous_agent):
    return train_in_single_iterations(continuous_agent, CONTINUOUS_CALLS)


@pytest.fixture(scope="module")
def recurrent_agent():
    env, env_params = make("gymnax::CartPole-v1", num_envs=RECURRENT.num_envs)
    actor = network(Categorical(2), GRU(8))
    critic = network(DiscreteQNetwork(2), GRU(12))
    return SAC(RECURRENT, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


@pytest.fixture(scope="module")
def recurrent_states(recurrent_agent):
    return train_in_single_iterations(recurrent_agent, RECURRENT_CALLS)


# ---------------------------------------------------------------- config and construction


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, r"num_envs must be a positive integer, got 0"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\], got 0.0"),
        ("tau", 0.0, r"tau must be in \(0, 1\], got 0.0"),
        ("tau", 1.5, r"tau must be in \(0, 1\], got 1.5"),
        ("target_update_interval", 0, r"target_update_interval must be a positive integer"),
        ("initial_alpha", 0.0, r"initial_alpha must be a positive number, got 0.0"),
        ("learn_alpha", 1, r"learn_alpha must be a bool, got 1"),
        ("target_entropy", math.inf, r"target_entropy must be a finite number or None"),
        ("max_grad_norm", -1.0, r"max_grad_norm must be a positive number or None"),
        ("buffer_size", 402, r"buffer_size=402 must be a multiple of num_envs=4"),
        ("buffer_size", 8, r"per env copy cannot hold one sampled sequence"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(field, value, message):
    with pytest.raises(ValueError, match=message):
        SACConfig(**{"num_envs": 4, "sequence_length": 3, field: value})


def test_defaults_are_polyak_averaging_every_gradient_step_with_a_learned_temperature():
    config = SACConfig(num_envs=1)
    assert (config.tau, config.target_update_interval) == (0.005, 1)
    assert config.learn_alpha is True and config.target_entropy is None


def pendulum_agent(actor_head, critic_head, config=CONTINUOUS, **kwargs):
    env, env_params = make("gymnax::Pendulum-v1", num_envs=config.num_envs)
    return SAC(config, env, env_params, mlp_network(actor_head), mlp_network(critic_head),
               optax.adam(1e-3), optax.adam(1e-3), **kwargs)  # fmt: skip


def test_num_envs_must_match_the_env():
    env, env_params = make("gymnax::Pendulum-v1", num_envs=8)
    with pytest.raises(ValueError, match=r"config.num_envs=4 but gymnax::Pendulum-v1 steps 8"):
        SAC(CONTINUOUS, env, env_params, mlp_network(SquashedGaussian(1)),
            mlp_network(TwinContinuousQNetwork()), optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip


@pytest.mark.parametrize(
    ("actor_head", "critic_head", "message"),
    [
        (Gaussian(1), TwinContinuousQNetwork(), r"actor's head must be SquashedGaussian\(1\)"),
        (SquashedGaussian(2), TwinContinuousQNetwork(), r"SquashedGaussian\(1\); got Squa"),
        (SquashedGaussian(1), VNetwork(), r"critic's head must be TwinContinuousQNetwork or"),
        (Categorical(2), TwinContinuousQNetwork(), r"continuous actions .* SquashedGaussian"),
    ],
)
def test_continuous_heads_must_match_the_box_action_space(actor_head, critic_head, message):
    with pytest.raises(ValueError, match=message):
        pendulum_agent(actor_head, critic_head)


@pytest.mark.parametrize(
    ("actor_head", "critic_head", "message"),
    [
        (SquashedGaussian(2), DiscreteQNetwork(2), r"actor's head must be Categorical\(2\)"),
        (Categorical(3), DiscreteQNetwork(2), r"Categorical\(2\); got Categorical\(3\)"),
        (Categorical(2), TwinContinuousQNetwork(), r"critic's head must be DiscreteQNetwork\(2\)"),
    ],
)
def test_discrete_heads_must_match_the_discrete_action_space(actor_head, critic_head, message):
    env, env_params = make("gymnax::CartPole-v1", num_envs=4)
    with pytest.raises(ValueError, match=message):
        SAC(CONTINUOUS, env, env_params, mlp_network(actor_head), mlp_network(critic_head),
            optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip


def test_optimizers_must_be_optax_transformations():
    env, env_params = make("gymnax::Pendulum-v1", num_envs=4)
    with pytest.raises(TypeError, match=r"alpha_optimizer must be an optax GradientTransf"):
        SAC(CONTINUOUS, env, env_params, mlp_network(SquashedGaussian(1)),
            mlp_network(TwinContinuousQNetwork()), optax.adam(1e-3), optax.adam(1e-3),
            alpha_optimizer=1e-3)  # fmt: skip


def test_sequences_and_burn_in_need_a_recurrent_torso():
    config = SACConfig(num_envs=4, sequence_length=4, burn_in_length=2)
    with pytest.raises(ValueError, match=r"needs a recurrent \(SequenceModel\) torso"):
        pendulum_agent(SquashedGaussian(1), TwinContinuousQNetwork(), config=config)


def test_box_actions_need_finite_bounds():
    with pytest.raises(ValueError, match=r"every action bound must be finite"):
        box_action_dim(Box(-np.inf, np.inf, (2,)), "SAC")


def test_squashed_actions_are_rescaled_onto_the_box_bounds():
    space = Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]))
    scaled = scale_to_box(jnp.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]), space)
    np.testing.assert_allclose(scaled, [[-2.0, 0.0], [0.0, 5.0], [2.0, 10.0]])


def test_default_target_entropy_is_minus_action_dim_or_half_of_log_n():
    assert pendulum_agent(SquashedGaussian(1), TwinContinuousQNetwork()).target_entropy == -1.0
    env, env_params = make("gymnax::CartPole-v1", num_envs=4)
    agent = SAC(CONTINUOUS, env, env_params, mlp_network(Categorical(2)),
                mlp_network(DiscreteQNetwork(2)), optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip
    # Half the maximum entropy: higher fractions let alpha grow without end on CartPole.
    assert agent.target_entropy == pytest.approx(0.5 * math.log(2))


# ---------------------------------------------------------------- continuous training


def test_env_actions_stay_within_the_box_bounds_and_use_all_of_them(continuous_states):
    state = continuous_states[-1]
    _, low, high = state.env_state.env_state  # EpisodeStatistics -> RecordActionRange
    assert float(low[0]) >= -2.0 and float(high[0]) <= 2.0
    # Rescaled from (-1, 1): the env saw actions beyond +-1.
    assert float(low[0]) < -1.0 and float(high[0]) > 1.0
    stored = np.asarray(state.buffer_state.experience["action"])
    assert stored.shape[-1] == 1 and np.all(np.abs(stored) <= 1.0)


def test_target_critic_is_polyak_averaged_after_every_gradient_step(continuous_states):
    tau = CONTINUOUS.tau
    for previous, state in itertools.pairwise(continuous_states):
        if int(state.gradient_steps) == int(previous.gradient_steps):
            assert leaves_equal(state.target_critic_params, previous.target_critic_params)
            continue
        assert int(state.gradient_steps) == int(previous.gradient_steps) + 1
        expected = jax.tree.map(
            lambda online, target: tau * online + (1 - tau) * target,
            state.critic_params, previous.target_critic_params,
        )  # fmt: skip
        for got, want in zip(jax.tree.leaves(state.target_critic_params),
                             jax.tree.leaves(expected), strict=True):  # fmt: skip
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert int(continuous_states[-1].gradient_steps) == CONTINUOUS_CALLS - 1


def test_temperature_falls_while_entropy_is_above_the_target(continuous_states):
    # Default target -1; a fresh squashed Gaussian has entropy around 0.
    alphas = [float(s.metrics["alpha"][-1]) for s in continuous_states[1:]]
    entropy = continuous_states[-1].metrics["entropy"]
    assert float(entropy[-1]) > -1.0
    assert alphas[-1] < alphas[0] == CONTINUOUS.initial_alpha
    assert all(b <= a for a, b in itertools.pairwise(alphas))


def test_same_key_gives_the_same_continuous_step(continuous_agent, continuous_states):
    again = continuous_agent.train(
        jax.random.split(jax.random.key(1), CONTINUOUS_CALLS)[-1],
        continuous_states[-2],
        num_steps=CONTINUOUS.steps_per_iteration,
    )
    assert leaves_equal(again, continuous_states[-1])


# ---------------------------------------------------------------- recurrent discrete


def test_discrete_agent_trains_counts_steps_and_records_every_metric(recurrent_states):
    first, last = recurrent_states[0], recurrent_states[-1]
    assert set(last.metrics) == set(SAC_METRIC_NAMES)
    assert int(last.env_steps) == RECURRENT_CALLS * RECURRENT.steps_per_iteration
    # Learning starts once 16 env steps (two iterations) are in.
    assert int(last.gradient_steps) == RECURRENT_CALLS - 1
    assert np.isnan(float(recurrent_states[1].metrics["critic_loss"][0]))
    for name in ("critic_loss", "actor_loss", "alpha_loss", "entropy", "q_value"):
        assert np.isfinite(float(last.metrics[name][0])), name
    assert not leaves_equal(first.actor_params, last.actor_params)
    assert not leaves_equal(first.critic_params, last.critic_params)


def test_recurrent_actor_and_critic_keep_their_own_carries(recurrent_states):
    first, last = recurrent_states[0], recurrent_states[-1]
    num_envs = RECURRENT.num_envs
    assert first.actor_carry.shape == (num_envs, 8)
    # A DiscreteQNetwork critic is held twice: two independent networks, two carries.
    assert first.critic_carry.shape == (2, num_envs, 12)
    kernel = jax.tree.leaves(last.critic_params)[0]
    assert kernel.shape[0] == 2 and not np.allclose(kernel[0], kernel[1])
    assert not np.allclose(last.actor_carry, 0.0)
    assert not np.allclose(last.critic_carry[0], last.critic_carry[1])


def test_recurrent_agent_learns_from_burned_in_sequences(recurrent_agent, recurrent_states):
    assert recurrent_agent.buffer.sequence_length == 2 + 3
    first, last = recurrent_states[0], recurrent_states[-1]
    assert int(last.gradient_steps) > 0
    # Every recurrent weight of both networks moved: replayed sequences (not single
    # steps from the initial carry) reach the hidden-to-hidden kernels.
    for name in ("actor_params", "critic_params"):
        before = jax.tree_util.tree_flatten_with_path(getattr(first, name)["params"]["torso"])
        after = jax.tree.leaves(getattr(last, name)["params"]["torso"])
        frozen = [
            jax.tree_util.keystr(path)
            for (path, old), new in zip(before[0], after, strict=True)
            if np.array_equal(np.asarray(old), np.asarray(new))
        ]
        assert not frozen, f"{name}: torso leaves never updated: {frozen}"


def test_hard_target_copies_every_target_update_interval_gradient_steps(recurrent_states):
    for previous, state in itertools.pairwise(recurrent_states):
        steps = int(state.gradient_steps)
        if steps > int(previous.gradient_steps) and steps % 2 == 0:
            assert leaves_equal(state.target_critic_params, state.critic_params)
        else:
            assert leaves_equal(state.target_critic_params, previous.target_critic_params)
            if steps:
                assert not leaves_equal(state.target_critic_params, state.critic_params)


def test_temperature_rises_while_entropy_is_below_the_target(recurrent_states):
    # Target entropy 1.0 > log(2), the most a policy over two actions can have.
    alphas = [float(s.metrics["alpha"][-1]) for s in recurrent_states[1:]]
    assert alphas[-1] > alphas[0] == RECURRENT.initial_alpha
    assert all(b >= a for a, b in itertools.pairwise(alphas))


def test_evaluate_never_touches_buffer_counters_carries_or_parameters(
    recurrent_agent, recurrent_states
):
    before = recurrent_states[-1]
    after = recurrent_agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert after.evaluation.returns.shape == (RECURRENT.num_envs, 2)
    assert int(after.evaluation.count) == 2 * RECURRENT.num_envs
    # CartPole pays 1 per step.
    np.testing.assert_allclose(after.evaluation.returns, after.evaluation.lengths)
    assert leaves_equal(before.replace(evaluation=None), after.replace(evaluation=None))


def test_evaluate_rejects_bad_arguments(recurrent_agent, recurrent_states):
    with pytest.raises(ValueError, match=r"num_episodes must be a positive int, got 0"):
        recurrent_agent.evaluate(jax.random.key(0), recurrent_states[-1], num_episodes=0)


def test_train_rejects_fewer_steps_than_one_iteration(recurrent_agent, recurrent_states):
    with pytest.raises(ValueError, match=r"at least num_envs \* config.num_steps = 8"):
        recurrent_agent.train(jax.random.key(0), recurrent_states[0], num_steps=4)
