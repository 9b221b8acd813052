"""Every agent's ``num_devices`` says clearly what is wrong before anything runs.

The same five mistakes for each agent: an env batch (or a sampled batch)
that does not split evenly, a ``num_devices`` that is not a positive int,
more devices than JAX sees, and a callback env (one host env per process).
Run through ``nox -s multidevice`` (four simulated CPU devices).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optax
import pytest

from memorax.algorithms import (
    DQN,
    PPO,
    PQN,
    R2D2,
    SAC,
    DQNConfig,
    PPOConfig,
    PQNConfig,
    R2D2Config,
    SACConfig,
)
from memorax.envs import make
from memorax.networks import Categorical, ContinuousQNetwork, SquashedGaussian, VNetwork

from . import (
    test_dqn_data_parallel,
    test_ppo_data_parallel,
    test_pqn_data_parallel,
    test_r2d2_data_parallel,
    test_sac_data_parallel,
)
from .sharded_comparison import NUM_DEVICES


@dataclasses.dataclass(frozen=True)
class Case:
    """One agent: its classes, config fields that make a small valid config, and how to
    build it on an env."""

    agent: type
    config: type
    fields: dict[str, Any]
    uneven_fields: dict[str, Any]  # extra fields for num_envs=6 (buffer a multiple of 6)
    networks: Callable[[], tuple]  # the agent's arguments after (config, env, env_params)
    env_id: str  # a gymnax id; the callback test uses gymnasium's env of the same name
    replay: bool

    def build(self, config: Any, env_id: str) -> Any:
        env, env_params = make(env_id, num_envs=config.num_envs)
        try:
            return self.agent(config, env, env_params, *self.networks())
        finally:
            env.close()


def _ppo_networks() -> tuple:
    network = test_ppo_data_parallel.network
    actor, critic = network(Categorical(2), False), network(VNetwork(), False)
    return actor, critic, optax.adam(1e-3), optax.adam(1e-3)


def _sac_networks() -> tuple:
    network = test_sac_data_parallel.network
    actor, critic = network(SquashedGaussian(1)), network(ContinuousQNetwork((16,)))
    return actor, critic, optax.adam(1e-3), optax.adam(1e-3)


def _q_networks(module: Any) -> Callable[[], tuple]:
    return lambda: (module.q_network(), optax.adam(1e-3))


REPLAY_UNEVEN = {"batch_size": 8, "buffer_size": 600}
CASES = {
    "PPO": Case(PPO, PPOConfig, {"num_steps": 16, "num_minibatches": 2}, {}, _ppo_networks,
                "gymnax::CartPole-v1", replay=False),
    "PQN": Case(PQN, PQNConfig, {"num_steps": 8, "num_minibatches": 2}, {},
                _q_networks(test_pqn_data_parallel), "gymnax::CartPole-v1", replay=False),
    "DQN": Case(DQN, DQNConfig, {"batch_size": 16}, REPLAY_UNEVEN,
                _q_networks(test_dqn_data_parallel), "gymnax::CartPole-v1", replay=True),
    "R2D2": Case(R2D2, R2D2Config, {"batch_size": 16}, REPLAY_UNEVEN,
                 _q_networks(test_r2d2_data_parallel), "gymnax::CartPole-v1", replay=True),
    "SAC": Case(SAC, SACConfig, {"batch_size": 16}, REPLAY_UNEVEN, _sac_networks,
                "gymnax::Pendulum-v1", replay=True),
}  # fmt: skip
REPLAY = [name for name, case in CASES.items() if case.replay]


@pytest.mark.parametrize("name", CASES)
def test_num_envs_not_divisible_by_num_devices_is_a_clear_error(name):
    case = CASES[name]
    message = rf"{name}Config: num_envs=6 env copies cannot be split evenly over num_devices=4"
    with pytest.raises(ValueError, match=message):
        case.config(num_envs=6, **{**case.fields, **case.uneven_fields}, num_devices=4)


@pytest.mark.parametrize("name", REPLAY)
def test_batch_size_not_divisible_by_num_devices_is_a_clear_error(name):
    message = rf"{name}Config: batch_size=10 sampled sequences cannot be split evenly over"
    with pytest.raises(ValueError, match=message):
        CASES[name].config(num_envs=8, batch_size=10, num_devices=4)


@pytest.mark.parametrize("num_devices", [0, 2.0, True])
@pytest.mark.parametrize("name", CASES)
def test_num_devices_must_be_a_positive_int(name, num_devices):
    case = CASES[name]
    with pytest.raises(ValueError, match=rf"{name}Config: num_devices must be a positive integer"):
        case.config(num_envs=8, **case.fields, num_devices=num_devices)


@pytest.mark.parametrize("name", CASES)
def test_more_devices_than_visible_is_a_clear_error(name):
    case = CASES[name]
    config = case.config(num_envs=16, **case.fields, num_devices=16)
    message = rf"{name}: num_devices=16 but only {NUM_DEVICES} JAX device\(s\).*XLA_FLAGS"
    with pytest.raises(ValueError, match=message):
        case.build(config, case.env_id)


@pytest.mark.parametrize("name", CASES)
def test_callback_env_refuses_data_parallel(name):
    case = CASES[name]
    config = case.config(num_envs=8, **case.fields, num_devices=NUM_DEVICES)
    callback_id = case.env_id.replace("gymnax::", "gymnasium::")
    with pytest.raises(ValueError, match=rf"{name}: .* callback env, one host env per process"):
        case.build(config, callback_id)
