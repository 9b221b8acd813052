"""DQN, SAC and PQN learn what to remember: MemoryChain with a GRU, an MLP as control.

MemoryChain (bsuite) shows a +-1 context on the first step only and pays +1
for naming it ``memory_length`` steps later (else -1): an agent without
memory scores 0 on average, whatever it learns. Each agent trains a GRU and
an MLP with the same settings, two seeds in one vmap, and is evaluated
greedily. These checks would have caught replay agents that trained no
memory (one replayed step from the initial carry per sample). The PPO and
R2D2 checks live in their own files; full budgets in ``benchmarks/learning.py``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import DQN, PQN, SAC, DQNConfig, PQNConfig, SACConfig
from memorax.envs import make
from memorax.networks import (
    GRU,
    MLP,
    Categorical,
    Dense,
    DiscreteQNetwork,
    FeatureExtractor,
    Network,
    OneHot,
)

pytestmark = pytest.mark.slow

MEMORY_LENGTH = 5
NUM_ENVS = 16
WIDTH = 32


def network(torso: str, head: nn.Module, layer_norm: bool = False) -> Network:
    """Observation encoder -> GRU or MLP -> ``head``; the GRU also sees the previous
    action and reward. Q-networks get a layer-normalised encoder (PQN's stability)."""
    if layer_norm:
        encoder: nn.Module = nn.Sequential([Dense(WIDTH), nn.LayerNorm(), nn.relu])
    else:
        encoder = MLP((WIDTH,), activation=nn.tanh)
    if torso == "mlp":
        return Network(FeatureExtractor(encoder), MLP((WIDTH,), activation=nn.tanh), head)
    extractor = FeatureExtractor(encoder, action_extractor=OneHot(2), reward_extractor=MLP((4,)))
    return Network(extractor, GRU(WIDTH), head)


def build(algo: str, torso: str):
    """``(agent, env steps)`` of the settings each check trains with."""
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS,
                           memory_length=MEMORY_LENGTH)  # fmt: skip
    adam = optax.adam(1e-3)
    if algo == "dqn":
        config = DQNConfig(
            num_envs=NUM_ENVS, num_steps=4, batch_size=32, buffer_size=16_000,
            learning_starts=1_000, target_update_interval=100, epsilon_decay_steps=10_000,
        )  # fmt: skip
        q_network = network(torso, DiscreteQNetwork(2), layer_norm=True)
        return DQN(config, env, env_params, q_network, adam), 15_360
    if algo == "sac":
        config = SACConfig(
            num_envs=NUM_ENVS, num_steps=4, batch_size=32, buffer_size=16_000, learning_starts=1_000
        )
        actor, critic = network(torso, Categorical(2)), network(torso, DiscreteQNetwork(2))
        return SAC(config, env, env_params, actor, critic, adam, adam), 15_360
    config = PQNConfig(num_envs=NUM_ENVS, num_steps=32, epsilon_decay_steps=10_000)
    return PQN(config, env, env_params, network(torso, DiscreteQNetwork(2), True), adam), 15_360


def greedy_returns(algo: str, torso: str) -> np.ndarray:
    """Per seed, the mean greedy return over 8 episodes per env copy."""
    agent, num_steps = build(algo, torso)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(1), 2), states, num_steps
    )
    states = jax.vmap(lambda key, state: agent.evaluate(key, state, num_episodes=8))(
        jax.random.split(jax.random.key(2), 2), states
    )
    return np.nanmean(np.asarray(states.evaluation.returns), axis=(1, 2))


@pytest.mark.parametrize("algo", ["dqn", "sac", "pqn"])
def test_gru_agent_remembers_the_context(algo):
    returns = greedy_returns(algo, "gru")
    assert returns.mean() >= 0.8, returns


@pytest.mark.parametrize("algo", ["dqn", "sac", "pqn"])
def test_mlp_control_cannot_remember_the_context(algo):
    returns = greedy_returns(algo, "mlp")
    assert abs(returns.mean()) <= 0.3, returns
