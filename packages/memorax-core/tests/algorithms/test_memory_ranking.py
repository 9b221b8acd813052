"""Memory models outrank the memoryless control: PPO on MemoryChain, one vmap of seeds each.

MemoryChain (bsuite) shows a +-1 context on the first step only and pays +1
for naming it ``MEMORY_LENGTH`` steps later (else -1), so a policy without
memory averages 0 whatever it learns. PPO is built as ``memorax train``
builds it (``memorax.cli.agents``) with two sequence models of different
families (a gated RNN, GRU, and fast-and-forgetful memory, FFM) and the MLP
control; each trains three seeds in one ``jax.vmap`` for 4,096 env steps and
is evaluated greedily. The MLP must fail (its mean stays near 0) and each
memory model must beat it by ``MARGIN``. This is the cheap CI form of
``benchmarks/memory_suite.py``; at this budget MinGRU is not yet reliable
(one seed of three remembered in a trial run), so it is not checked here.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from memorax.cli.agents import ALGORITHMS, TORSOS
from memorax.envs import make

pytestmark = pytest.mark.slow

MEMORY_LENGTH = 5
NUM_SEEDS = 3
NUM_STEPS = 4_096
MEMORY_MODELS = ("gru", "ffm")
MARGIN = 0.5


def greedy_returns(torso: str) -> np.ndarray:
    """Per seed, the mean greedy return over 8 episodes per env copy after training."""
    spec = ALGORITHMS["ppo"]
    config = spec.config_class(**{**spec.defaults_for(torso), "num_envs": 8, "num_steps": 16})
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=config.num_envs,
                           memory_length=MEMORY_LENGTH)  # fmt: skip
    agent = spec.build(config, env, env_params, torso, 16, 1e-3, None)

    def train_and_evaluate(keys: jax.Array) -> jax.Array:
        states = jax.vmap(agent.init)(keys[0])
        states = jax.vmap(agent.train, in_axes=(0, 0, None))(keys[1], states, NUM_STEPS)
        states = jax.vmap(lambda key, state: agent.evaluate(key, state, num_episodes=8))(
            keys[2], states
        )
        return states.evaluation.returns

    # One program per torso: compiling init, training and evaluation together
    # costs less than compiling each separately.
    keys = jax.random.split(jax.random.key(0), 3 * NUM_SEEDS).reshape(3, NUM_SEEDS)
    returns = np.asarray(jax.jit(train_and_evaluate)(keys))
    return np.nanmean(returns.reshape(NUM_SEEDS, -1), axis=1)


@pytest.fixture(scope="module")
def returns() -> dict[str, np.ndarray]:
    return {torso: greedy_returns(torso) for torso in ("mlp", *MEMORY_MODELS)}


def test_the_checked_models_are_registered_torsos():
    assert set(MEMORY_MODELS) <= set(TORSOS) - {"mlp"}


def test_mlp_control_cannot_remember(returns):
    # The control must fail: its final choice is a coin flip, expected return 0.
    assert abs(returns["mlp"].mean()) <= 0.3, returns["mlp"]


@pytest.mark.parametrize("torso", MEMORY_MODELS)
def test_memory_model_beats_the_mlp_control_by_a_margin(returns, torso):
    assert returns[torso].mean() >= returns["mlp"].mean() + MARGIN, (torso, returns)
