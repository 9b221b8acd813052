"""PQN: config and construction checks, Q(lambda) targets, train/evaluate semantics, learning."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms.pqn import PQN, PQN_METRIC_NAMES, PQNConfig
from memorax.algorithms.q_learning import linear_epsilon
from memorax.algorithms.returns import q_lambda_returns
from memorax.envs import make
from memorax.networks import GRU, Categorical, DiscreteQNetwork, FeatureExtractor, Network

NUM_ENVS = 4
CONFIG = PQNConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, update_epochs=2)
STEPS_PER_UPDATE = CONFIG.steps_per_update


def layer_norm_block(width: int) -> nn.Module:
    """Dense -> LayerNorm -> ReLU, the normalised layer PQN relies on."""
    return nn.Sequential([nn.Dense(width), nn.LayerNorm(), nn.relu])


def q_network(num_actions: int = 2, width: int = 16, recurrent: bool = False) -> Network:
    torso = GRU(width) if recurrent else layer_norm_block(width)
    return Network(FeatureExtractor(layer_norm_block(width)), torso, DiscreteQNetwork(num_actions))


def make_agent(config=CONFIG, env_id="gymnax::CartPole-v1", network=None, **kwargs):
    env, env_params = make(env_id, num_envs=config.num_envs, **kwargs.pop("make_kwargs", {}))
    return PQN(config, env, env_params, network or q_network(), optax.adam(1e-3), **kwargs)


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
    state = agent.init(jax.random.key(0))
    return state, agent.train(jax.random.key(1), state, num_steps=2 * STEPS_PER_UPDATE)


@pytest.fixture(scope="module")
def vmapped_run(agent, records):
    """Three seeds trained in one vmap, and the metrics records that run streamed."""
    jax.effects_barrier()
    records.clear()
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(1), 3))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(keys, states, 2 * STEPS_PER_UPDATE)
    jax.effects_barrier()
    return states, list(records)


@pytest.fixture(scope="module")
def vmapped(vmapped_run):
    return vmapped_run[0]


# ---------------------------------------------------------------- Q(lambda) targets


def reference_q_lambda(rewards, bootstrap, terminated, done, gamma, lam):
    """The lambda-return as a weighted sum of n-step returns, one start at a time.

    ``G_t = (1 - lam) sum_{n < N} lam^(n-1) G_t^(n) + lam^(N-1) G_t^(N)``, where
    ``N`` is the number of steps to the episode's or the rollout's end and
    ``G_t^(n)`` sums ``n`` discounted rewards then bootstraps from step
    ``t + n - 1``'s ``final_observation`` (zero if that step terminated).
    """
    steps, batch = rewards.shape
    out = np.zeros((steps, batch))
    for b in range(batch):
        for t in range(steps):
            horizon = 1
            while t + horizon - 1 < steps - 1 and not done[t + horizon - 1, b]:
                horizon += 1
            n_step = []
            for n in range(1, horizon + 1):
                last = t + n - 1
                discounted = sum(gamma**k * rewards[t + k, b] for k in range(n))
                tail = 0.0 if terminated[last, b] else gamma**n * bootstrap[last, b]
                n_step.append(discounted + tail)
            weights = [(1 - lam) * lam ** (n - 1) for n in range(1, horizon)] + [
                lam ** (horizon - 1)
            ]
            out[t, b] = sum(w * g for w, g in zip(weights, n_step, strict=True))
    return out


@pytest.mark.parametrize("lam", [0.0, 0.65, 1.0])
def test_q_lambda_matches_the_n_step_mixture_reference(lam):
    rng = np.random.default_rng(0)
    steps, batch = 9, 5
    rewards = rng.normal(size=(steps, batch))
    bootstrap = rng.normal(size=(steps, batch))
    terminated = rng.random((steps, batch)) < 0.15
    truncated = ~terminated & (rng.random((steps, batch)) < 0.15)
    done = terminated | truncated
    got = q_lambda_returns(
        jnp.asarray(rewards), jnp.asarray(bootstrap), jnp.asarray(terminated),
        jnp.asarray(done), 0.9, lam,
    )  # fmt: skip
    want = reference_q_lambda(rewards, bootstrap, terminated, done, 0.9, lam)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_q_lambda_bootstraps_truncation_but_not_termination():
    rewards = jnp.ones((1, 2))
    bootstrap = jnp.full((1, 2), 10.0)
    terminated = jnp.array([[True, False]])
    done = jnp.array([[True, True]])  # column 1 is truncated
    got = q_lambda_returns(rewards, bootstrap, terminated, done, 0.5, 0.9)
    np.testing.assert_allclose(got, [[1.0, 1.0 + 0.5 * 10.0]])


def test_linear_epsilon_decays_then_stays_at_the_end_value():
    got = linear_epsilon(jnp.array([0, 50, 100, 1000]), 1.0, 0.1, 100)
    np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(linear_epsilon(jnp.array(5), 1.0, 0.2, 0), 0.2)


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, r"num_envs must be a positive integer, got 0"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\], got 0.0"),
        ("q_lambda", 1.5, r"q_lambda must be in \[0, 1\], got 1.5"),
        ("epsilon_end", -0.1, r"epsilon_end must be in \[0, 1\]"),
        ("epsilon_decay_steps", 0.5, r"epsilon_decay_steps must be a non-negative integer"),
        ("max_grad_norm", 0.0, r"max_grad_norm must be a positive number or None"),
        ("burn_in_length", 16, r"burn_in_length=16 must be smaller than num_steps=16"),
        ("num_minibatches", 3, r"cannot be split into num_minibatches=3"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(field, value, message):
    kwargs = {"num_envs": NUM_ENVS, "num_steps": 16, field: value}
    with pytest.raises(ValueError, match=message):
        PQNConfig(**kwargs)


def test_num_envs_must_match_the_env():
    env, env_params = make("gymnax::CartPole-v1", num_envs=8)
    with pytest.raises(ValueError, match=r"config.num_envs=4 but gymnax::CartPole-v1 steps 8"):
        PQN(CONFIG, env, env_params, q_network(), optax.adam(1e-3))


def test_q_head_must_have_one_output_per_action():
    with pytest.raises(ValueError, match=r"DiscreteQNetwork\(3\) does not match .* use Disc"):
        make_agent(network=q_network(num_actions=3))


def test_a_policy_head_is_rejected():
    network = Network(FeatureExtractor(layer_norm_block(8)), layer_norm_block(8), Categorical(2))
    with pytest.raises(ValueError, match=r"head must be a DiscreteQNetwork, got Categorical"):
        make_agent(network=network)


def test_continuous_actions_are_rejected():
    with pytest.raises(ValueError, match=r"needs a Discrete action space"):
        make_agent(env_id="gymnax::Pendulum-v1")


def test_optimizer_must_be_an_optax_transformation():
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    with pytest.raises(TypeError, match=r"optimizer must be an optax GradientTransformation"):
        PQN(CONFIG, env, env_params, q_network(), "adam")


def test_burn_in_without_a_recurrent_torso_is_rejected():
    config = PQNConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, burn_in_length=4)
    with pytest.raises(ValueError, match=r"burn_in_length > 0 needs a recurrent"):
        make_agent(config=config)


# ---------------------------------------------------------------- train


def test_train_counts_env_steps_and_records_every_metric(trained):
    before, after = trained
    assert int(before.env_steps) == 0
    assert int(after.env_steps) == 2 * STEPS_PER_UPDATE
    assert int(after.update_count) == 2
    assert set(after.metrics) == set(PQN_METRIC_NAMES)
    assert all(v.shape == (2,) for v in after.metrics.values())
    assert np.all(np.isfinite(after.metrics["loss"]))
    np.testing.assert_array_equal(after.metrics["env_steps"], [64, 128])
    assert not leaves_equal(before.params, after.params)


def test_epsilon_follows_the_linear_schedule_in_env_steps(agent, trained):
    _, after = trained
    decay = CONFIG.epsilon_decay_steps
    want = [1.0 - (1.0 - 0.05) * steps / decay for steps in (0, STEPS_PER_UPDATE)]
    np.testing.assert_allclose(after.metrics["epsilon"], want, rtol=1e-6)


def test_train_rejects_fewer_steps_than_one_update(agent, trained):
    with pytest.raises(ValueError, match=r"at least num_envs \* config.num_steps = 64"):
        agent.train(jax.random.key(0), trained[0], num_steps=10)


def test_same_key_gives_the_same_result(agent, trained):
    before, after = trained
    again = agent.train(jax.random.key(1), before, num_steps=2 * STEPS_PER_UPDATE)
    assert leaves_equal(after, again)


def test_vmapped_train_gives_independent_seeds_matching_single_runs(agent, vmapped):
    assert vmapped.metrics["loss"].shape == (3, 2)
    kernels = jax.tree.leaves(vmapped.params)[0]
    assert not np.allclose(kernels[0], kernels[1])
    alone = agent.init(jax.random.split(jax.random.key(1), 3)[1])
    alone = agent.train(jax.random.split(jax.random.key(0), 3)[1], alone, 2 * STEPS_PER_UPDATE)
    seed_1 = jax.tree.map(lambda x: x[1], vmapped.params)
    for x, y in zip(jax.tree.leaves(alone.params), jax.tree.leaves(seed_1), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_metrics_callback_streams_each_update_with_its_seed_index(vmapped_run):
    vmapped, records = vmapped_run
    assert len(records) == 3 * 2
    seeded = {(r["seed"], r["update"]): r for r in records}
    for seed in range(3):
        for update in (1, 2):
            expected = float(vmapped.metrics["loss"][seed, update - 1])
            assert seeded[(seed, update)]["loss"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- evaluate


def test_evaluate_records_episodes_and_never_changes_training_state(agent, trained):
    _, before = trained
    after = agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert after.evaluation.returns.shape == (NUM_ENVS, 2)
    assert int(after.evaluation.count) == 2 * NUM_ENVS
    np.testing.assert_allclose(after.evaluation.returns, after.evaluation.lengths)
    assert leaves_equal(before.replace(evaluation=None), after.replace(evaluation=None))
    again = agent.evaluate(jax.random.key(3), before, num_episodes=2)
    assert leaves_equal(after.evaluation, again.evaluation)


def test_evaluate_rejects_an_env_with_other_spaces(agent, trained):
    env, env_params = make("gymnax::Acrobot-v1", num_envs=2)
    with pytest.raises(ValueError, match=r"evaluation env's observation_space"):
        agent.evaluate(jax.random.key(0), trained[1], env=env, env_params=env_params)


# ---------------------------------------------------------------- memory


def test_recurrent_agent_trains_with_burn_in_and_keeps_its_carry():
    config = PQNConfig(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=1,
                       burn_in_length=4)  # fmt: skip
    agent = make_agent(config=config, network=q_network(recurrent=True))
    before = agent.init(jax.random.key(0))
    after = agent.train(jax.random.key(1), before, num_steps=64)
    assert np.all(np.isfinite(after.metrics["loss"]))
    assert not leaves_equal(before.carry, after.carry)
    assert not leaves_equal(before.params, after.params)
