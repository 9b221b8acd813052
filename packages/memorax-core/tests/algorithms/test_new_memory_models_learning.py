"""PPO learns to remember with the delta-rule models: DeltaNet, Gated DeltaNet, DeltaProduct.

MemoryChain (bsuite) shows a +-1 context on the first step only and pays +1
for naming it ``memory_length`` steps later (else -1). Without memory the
final choice is a coin flip, expected return 0: the MLP control that must
fail lives in ``test_ppo_learning.py``
(``test_mlp_agent_cannot_remember_the_memory_chain_context``), next to the
GRU check this one is modelled on. Each model is the registered
configuration (``SEQUENCE_MODELS[name]``), two seeds in one vmap.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import (
    MLP,
    SEQUENCE_MODELS,
    Categorical,
    FeatureExtractor,
    Network,
    VNetwork,
)

pytestmark = pytest.mark.slow

# The settings of the GRU and MLP checks in test_ppo_learning.py, on a shorter budget.
MEMORY_LENGTH = 10
NUM_ENVS, NUM_STEPS = 16, 32
WIDTH = 32
TRAIN_STEPS = 20_480  # 40 updates; each model is at ~0.9 by update 15
LAST_UPDATES = 10


def network(torso: str, head: nn.Module) -> Network:
    """Observation MLP -> the registered ``torso`` -> ``head``."""
    extractor = FeatureExtractor(MLP((WIDTH,), activation=nn.tanh))
    return Network(extractor, SEQUENCE_MODELS[torso](WIDTH), head)


def training_returns(torso: str) -> np.ndarray:
    """Per seed, the mean training episode return over the last updates."""
    env, env_params = make(
        "gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS, memory_length=MEMORY_LENGTH
    )
    config = PPOConfig(num_envs=NUM_ENVS, num_steps=NUM_STEPS)
    optimizer = optax.adam(1e-3, eps=1e-5)
    actor, critic = network(torso, Categorical(2)), network(torso, VNetwork())
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)
    states = jax.jit(jax.vmap(agent.init))(jax.random.split(jax.random.key(0), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(1), 2), states, TRAIN_STEPS
    )
    episode_return = np.asarray(states.metrics["episode_return"])[:, -LAST_UPDATES:]
    return np.nanmean(episode_return, axis=1)


@pytest.mark.parametrize("torso", ["deltanet", "gated_deltanet", "delta_product"])
def test_ppo_with_a_delta_rule_torso_remembers_the_memory_chain_context(torso):
    # +1 for recalling the context shown MEMORY_LENGTH steps earlier, -1 otherwise.
    returns = training_returns(torso)
    print(f"{torso}: per-seed returns {returns}")
    assert returns.mean() >= 0.6, returns
    assert returns.min() >= 0.3, returns
