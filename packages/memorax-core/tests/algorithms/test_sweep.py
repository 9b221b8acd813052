"""Sweeps: K settings x S seeds in one program equal the K x S runs they replace."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import optax
import pytest

from memorax import PPO, PPOConfig, make
from memorax.algorithms.sweep import Sweep, grid
from memorax.cli.agents import ALGORITHMS
from memorax.networks import Categorical, VNetwork

from .conftest import mlp_network

CONFIG = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2)
STEPS = 2 * 4 * 16  # two updates


def ppo(config: PPOConfig = CONFIG, learning_rate: float = 3e-4) -> PPO:
    env, env_params = make("gymnax::CartPole-v1", num_envs=config.num_envs)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, eps=1e-5)
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    return PPO(config, env, env_params, actor, critic, optimizer, optimizer)


@pytest.fixture(scope="module")
def swept():
    sweep = Sweep(ppo(), {"gamma": [0.9, 0.99], "learning_rate": [1e-3, 3e-3]})
    states = sweep.init(jax.random.key(0), num_seeds=2)
    return sweep, sweep.train(jax.random.key(1), states, STEPS)


def test_each_setting_and_seed_equals_its_own_run(swept):
    sweep, states = swept
    np.testing.assert_array_equal(states.env_steps, np.full((2, 2), STEPS))
    init_keys = jax.random.split(jax.random.key(0), 2)
    train_keys = jax.random.split(jax.random.key(1), 2)
    for k, setting in enumerate(sweep.settings):
        agent = ppo(dataclasses.replace(CONFIG, gamma=setting["gamma"]), setting["learning_rate"])
        for seed in range(2):
            alone = agent.train(train_keys[seed], agent.init(init_keys[seed]), STEPS)
            swept_leaves = jax.tree.leaves(states.actor_params)
            for got, want in zip(swept_leaves, jax.tree.leaves(alone.actor_params), strict=True):
                np.testing.assert_allclose(got[k, seed], want, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                states.metrics["value_loss"][k, seed], alone.metrics["value_loss"], rtol=1e-5
            )
    kernels = jax.tree.leaves(states.actor_params)[1]
    assert not np.allclose(kernels[0, 0], kernels[1, 0]), "settings must differ"


def test_grid_crosses_every_value():
    assert grid(gamma=[0.9, 0.99], tau=[0.1, 0.2]) == {
        "gamma": [0.9, 0.9, 0.99, 0.99],
        "tau": [0.1, 0.2, 0.1, 0.2],
    }


# Float fields an agent needs when it is built (its buffer's exponents, a module's
# initial value), which a sweep must refuse by name.
BUILD_TIME_FIELDS = {
    "r2d2": {"priority_exponent", "importance_sampling_exponent"},
    "sac": {"initial_alpha"},
}


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_every_float_field_of_every_agent_sweeps_or_is_refused_by_name(algo):
    """Tracing a sweep over an agent's float fields (no compile) builds its program."""
    spec = ALGORITHMS[algo]
    env, env_params = make("gymnax::CartPole-v1", num_envs=4)
    torso = "gru" if algo == "r2d2" else "mlp"
    config = spec.config_class(**{**spec.defaults_for(torso), "num_envs": 4})
    agent = spec.build(config, env, env_params, torso, 8, 1e-3, None)
    floats = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
              if isinstance(getattr(config, f.name), float)}  # fmt: skip
    refused = BUILD_TIME_FIELDS.get(algo, set())
    for name in refused:
        with pytest.raises(ValueError, match=f"uses {name} to build its program"):
            Sweep(agent, {name: [floats[name]]})
    sweepable = {name: [value, value] for name, value in floats.items() if name not in refused}
    assert len(sweepable) >= 2, algo
    sweep = Sweep(agent, sweepable)
    keys = jax.random.split(jax.random.key(0), 2 * 2).reshape(2, 2)
    values = sweep._arrays()
    states = jax.eval_shape(sweep._init, keys, values)
    train = functools.partial(sweep._train, iterations=1)
    trained = jax.eval_shape(train, keys, states.replace(metrics=None), values)
    assert trained.env_steps.shape == (2, 2)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_steps": [8, 16]}, "not a float: integer, boolean and optional fields shape"),
        ({"gama": [0.9]}, "has no field 'gama'; sweepable: \\[.*'gamma'"),
        ({"gamma": [0.9, 0.99], "gae_lambda": [0.9]}, "one value per setting"),
        ({"gamma": [1.5]}, "setting 0 .*gamma must be"),
        ({}, "at least one hyperparameter"),
    ],
)
def test_what_cannot_be_swept_is_refused_with_the_reason(values, message):
    with pytest.raises(ValueError, match=message):
        Sweep(ppo(), values)


def test_learning_rate_needs_injected_hyperparameters():
    env, env_params = make("gymnax::CartPole-v1", num_envs=4)
    plain = optax.adam(3e-4)
    actor, critic = mlp_network(Categorical(2)), mlp_network(VNetwork())
    agent = PPO(CONFIG, env, env_params, actor, critic, plain, plain)
    with pytest.raises(ValueError, match=r"optax.inject_hyperparams\(optax.adam\)"):
        Sweep(agent, {"learning_rate": [1e-3, 3e-3]})
