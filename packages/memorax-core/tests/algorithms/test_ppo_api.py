"""PPO's public API: construction checks, train/evaluate semantics, metrics, seeds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import METRIC_NAMES, PPO, PPOConfig
from memorax.envs import make
from memorax.networks import Categorical, Gaussian, OneHot, VNetwork

from .conftest import gru_network, mlp_network

NUM_ENVS = 4
CONFIG = PPOConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, update_epochs=2)
STEPS_PER_UPDATE = CONFIG.steps_per_update


def make_agent(config=CONFIG, env_id="gymnax::CartPole-v1", actor=None, critic=None, **kwargs):
    env, env_params = make(env_id, num_envs=config.num_envs)
    actor = actor or mlp_network(Categorical(2))
    critic = critic or mlp_network(VNetwork())
    return PPO(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3), **kwargs)


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def records():
    return []


@pytest.fixture(scope="module")
def agent(records):
    return make_agent(metrics_callback=records.append)


@pytest.fixture(scope="module")
def trained(agent):
    """One state before and after two updates."""
    state = agent.init(jax.random.key(0))
    return state, agent.train(jax.random.key(1), state, num_steps=2 * STEPS_PER_UPDATE)


@pytest.fixture(scope="module")
def vmapped(agent):
    """The seed document's call form: three seeds initialised and trained in one vmap."""
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(1), 3))
    return jax.vmap(agent.train, in_axes=(0, 0, None))(keys, states, 2 * STEPS_PER_UPDATE)


# ---------------------------------------------------------------- construction


def test_num_envs_must_match_the_env():
    env, env_params = make("gymnax::CartPole-v1", num_envs=8)
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    with pytest.raises(ValueError, match=r"config.num_envs=4 but gymnax::CartPole-v1 steps 8"):
        PPO(CONFIG, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def test_categorical_head_must_match_the_number_of_actions():
    message = r"Categorical\(3\) does not match .* use Categorical\(2\)"
    with pytest.raises(ValueError, match=message):
        make_agent(actor=mlp_network(Categorical(3)))


def test_gaussian_head_on_discrete_actions_is_rejected():
    with pytest.raises(ValueError, match=r"discrete actions .* use a Categorical head"):
        make_agent(actor=mlp_network(Gaussian(2)))


def test_categorical_head_on_continuous_actions_is_rejected():
    with pytest.raises(ValueError, match=r"continuous actions .* use a Gaussian head"):
        make_agent(env_id="gymnax::Pendulum-v1", actor=mlp_network(Categorical(2)))


def test_recurrent_agents_need_num_envs_divisible_by_num_minibatches():
    config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=8)
    with pytest.raises(ValueError, match="num_envs=4 must be divisible by num_minibatches=8"):
        make_agent(config, actor=gru_network(Categorical(2)))


def test_burn_in_without_a_recurrent_torso_is_rejected():
    config = PPOConfig(num_envs=4, num_steps=16, burn_in_length=4)
    with pytest.raises(ValueError, match="burn_in_length > 0 needs a recurrent"):
        make_agent(config)


def test_optimizers_must_be_optax_transformations():
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    with pytest.raises(TypeError, match="actor_optimizer must be an optax GradientTransformation"):
        PPO(CONFIG, env, env_params, actor, critic, 1e-3, optax.adam(1e-3))


# ---------------------------------------------------------------- train


def test_train_counts_env_steps_over_all_envs_and_updates(trained):
    before, after = trained
    assert int(before.env_steps) == 0 and int(before.update_count) == 0
    assert int(after.env_steps) == 2 * STEPS_PER_UPDATE
    assert int(after.update_count) == 2
    np.testing.assert_array_equal(after.metrics["env_steps"], [64, 128])
    np.testing.assert_array_equal(after.metrics["update"], [1, 2])


def test_train_changes_parameters_and_records_finite_losses(trained):
    before, after = trained
    assert not leaves_equal(before.actor_params, after.actor_params)
    assert not leaves_equal(before.critic_params, after.critic_params)
    assert set(after.metrics) == set(METRIC_NAMES)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "explained_variance"):
        assert after.metrics[name].shape == (2,)
        assert np.all(np.isfinite(after.metrics[name])), name
    # A near-uniform initial policy over two actions has entropy close to log 2.
    assert after.metrics["entropy"][0] == pytest.approx(np.log(2), abs=0.05)


def test_episode_metrics_report_completed_cartpole_episodes(trained):
    _, after = trained
    count = after.metrics["episode_count"]
    returns = after.metrics["episode_return"]
    assert count.sum() > 0
    # CartPole pays 1 per step, so a completed episode's return equals its length.
    done = count > 0
    np.testing.assert_allclose(returns[done], after.metrics["episode_length"][done])
    assert np.all(np.isnan(returns[~done]))


def test_train_warns_when_num_steps_is_not_a_multiple_of_one_update(agent, trained):
    _, state = trained
    with pytest.warns(UserWarning, match=r"running 2 updates = 128 env steps"):
        state = agent.train(jax.random.key(2), state, num_steps=2 * STEPS_PER_UPDATE + 10)
    assert int(state.env_steps) == 4 * STEPS_PER_UPDATE


@pytest.mark.parametrize("num_steps", [STEPS_PER_UPDATE - 1, 100.0])
def test_train_rejects_fewer_steps_than_one_update_or_a_non_int(agent, trained, num_steps):
    with pytest.raises(ValueError, match="num_steps must be a Python int of at least"):
        agent.train(jax.random.key(2), trained[1], num_steps=num_steps)


def test_same_key_gives_the_same_result(agent, trained):
    before, after = trained
    again = agent.train(jax.random.key(1), before, num_steps=2 * STEPS_PER_UPDATE)
    assert leaves_equal(after, again)


def test_vmapped_train_gives_per_seed_metrics_and_independent_seeds(vmapped):
    assert vmapped.metrics["policy_loss"].shape == (3, 2)
    np.testing.assert_array_equal(vmapped.env_steps, [128, 128, 128])
    kernels = jax.tree.leaves(vmapped.actor_params)[0]
    assert not np.allclose(kernels[0], kernels[1])
    assert not np.allclose(kernels[1], kernels[2])


def test_vmapped_train_matches_training_each_seed_alone(agent, vmapped):
    # Seed 1 of the vmap, trained on its own, gives the same parameters.
    keys = jax.random.split(jax.random.key(0), 3)
    state = agent.init(jax.random.split(jax.random.key(1), 3)[1])
    alone = agent.train(keys[1], state, num_steps=2 * STEPS_PER_UPDATE)
    seed_1 = jax.tree.map(lambda x: x[1], vmapped.actor_params)
    for x, y in zip(jax.tree.leaves(alone.actor_params), jax.tree.leaves(seed_1), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_metrics_callback_streams_each_update_with_its_seed_index(agent, records, vmapped):
    records.clear()
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(1), 3))
    jax.vmap(agent.train, in_axes=(0, 0, None))(keys, states, 2 * STEPS_PER_UPDATE)
    jax.effects_barrier()
    assert len(records) == 3 * 2
    assert set(records[0]) == set(METRIC_NAMES) | {"seed"}
    for record in records:
        seed, update = record["seed"], record["update"]
        expected = float(vmapped.metrics["policy_loss"][seed, update - 1])
        assert record["policy_loss"] == pytest.approx(expected, rel=1e-5)
        assert record["env_steps"] == update * STEPS_PER_UPDATE
    assert sorted((r["seed"], r["update"]) for r in records) == [
        (seed, update) for seed in range(3) for update in (1, 2)
    ]


# ---------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def evaluated(agent, trained):
    _, state = trained
    return state, agent.evaluate(jax.random.key(3), state, num_episodes=2)


def test_evaluate_records_complete_episodes(evaluated):
    _, result = evaluated
    evaluation = result.evaluation
    assert evaluation.returns.shape == (NUM_ENVS, 2)
    assert int(evaluation.count) == 2 * NUM_ENVS
    assert np.all(evaluation.lengths > 0)
    np.testing.assert_allclose(evaluation.returns, evaluation.lengths)


def test_evaluate_never_changes_training_state(evaluated):
    before, after = evaluated
    assert leaves_equal(before.replace(evaluation=None), after.replace(evaluation=None))


def test_evaluate_is_deterministic_for_a_fixed_key(agent, evaluated):
    before, after = evaluated
    again = agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert leaves_equal(after.evaluation, again.evaluation)


def test_evaluate_on_a_separate_env_with_its_own_batch_size(agent, trained):
    _, state = trained
    eval_env, eval_params = make("gymnax::CartPole-v1", num_envs=3)
    result = agent.evaluate(jax.random.key(4), state, env=eval_env, env_params=eval_params)
    assert result.evaluation.returns.shape == (3, 1)
    assert int(result.evaluation.count) == 3
    assert leaves_equal(state.env_state, result.env_state)


def test_evaluate_stops_at_max_steps_and_marks_unfinished_episodes(agent, trained):
    _, state = trained
    result = agent.evaluate(jax.random.key(4), state, max_steps=2)
    assert int(result.evaluation.count) == 0
    assert np.all(np.isnan(result.evaluation.returns))


def test_evaluate_rejects_an_env_with_other_spaces(agent, trained):
    pendulum, params = make("gymnax::Pendulum-v1", num_envs=NUM_ENVS)
    with pytest.raises(ValueError, match=r"evaluation env's observation_space .* differs"):
        agent.evaluate(jax.random.key(4), trained[1], env=pendulum, env_params=params)


def test_vmapped_evaluate_runs_each_seed(agent, vmapped):
    states = jax.vmap(agent.evaluate)(jax.random.split(jax.random.key(5), 3), vmapped)
    assert states.evaluation.returns.shape == (3, NUM_ENVS, 1)
    np.testing.assert_array_equal(states.evaluation.count, [NUM_ENVS] * 3)


# ---------------------------------------------------------------- memory and actions


@pytest.fixture(scope="module")
def recurrent_run():
    """A GRU agent that also sees its previous action and reward, with burn-in."""
    config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2,
                       burn_in_length=4)  # fmt: skip
    extras = {"action_extractor": OneHot(2), "reward_extractor": lambda r: r}
    actor = gru_network(Categorical(2), **extras)
    agent = make_agent(config, actor=actor, critic=gru_network(VNetwork(), **extras))
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=256)
    return agent, state


def test_recurrent_agent_trains_and_keeps_its_carry(recurrent_run):
    _, state = recurrent_run
    assert int(state.update_count) == 4
    assert state.actor_carry.shape == (4, 16)
    assert np.any(np.asarray(state.actor_carry) != 0)
    assert np.all(np.isfinite(state.metrics["policy_loss"]))


def test_previous_action_and_reward_are_zero_at_episode_starts(recurrent_run):
    _, state = recurrent_run
    starts = np.asarray(state.episode_start)
    assert np.all(np.asarray(state.previous_action)[starts] == 0)
    assert np.all(np.asarray(state.previous_reward)[starts] == 0)
    # Mid-episode, CartPole's previous reward is its constant 1.
    assert np.all(np.asarray(state.previous_reward)[~starts] == 1)


def test_recurrent_agent_evaluates(recurrent_run):
    agent, state = recurrent_run
    result = agent.evaluate(jax.random.key(2), state)
    assert int(result.evaluation.count) == 4


def test_continuous_actions_train_and_evaluate_within_bounds():
    config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=1)
    agent = make_agent(config, env_id="gymnax::Pendulum-v1", actor=mlp_network(Gaussian(1)))
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), num_steps=128)
    assert np.all(np.isfinite(state.metrics["policy_loss"]))
    actions = agent._env_action(jnp.asarray([[-10.0], [0.5], [10.0], [0.0]]))
    np.testing.assert_allclose(actions[:, 0], [-2.0, 0.5, 2.0, 0.0])
    result = agent.evaluate(jax.random.key(2), state)
    # Pendulum episodes are 200 steps, truncated by the time limit.
    np.testing.assert_array_equal(result.evaluation.lengths, 200)
