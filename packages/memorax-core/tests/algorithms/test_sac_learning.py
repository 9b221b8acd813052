"""SAC learns: what truncation bootstraps, and Pendulum swing-up on a small budget.

The full-budget run (100k env steps) lives in ``benchmarks/learning.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memorax.algorithms import SAC, SACConfig
from memorax.envs import Box, Wrapper, make
from memorax.networks import (
    MLP,
    Categorical,
    DiscreteQNetwork,
    FeatureExtractor,
    Network,
    SquashedGaussian,
    TwinContinuousQNetwork,
)

from .conftest import mlp_network

pytestmark = pytest.mark.slow


class EndsEveryStep(Wrapper):
    """Every step ends an episode: the first half of the copies terminate, the rest are
    truncated. A last observation entry says which (1.0: terminates)."""

    @property
    def observation_space(self) -> Box:  # type: ignore[override]
        space = self.env.observation_space
        return Box(np.append(space.low_array, 0.0), np.append(space.high_array, 1.0))

    def _flag(self, observation: jax.Array) -> jax.Array:
        flag = (jnp.arange(self.num_envs) < self.num_envs // 2).astype(observation.dtype)
        return jnp.concatenate([observation, flag[:, None]], axis=-1)

    def _reset(self, key, params):
        observation, state = self.env.reset(key, params)
        return self._flag(observation), state

    def _step(self, key, state, action, params):
        observation, state, reward, _, _, info = self.env.step(key, state, action, params)
        terminates = jnp.arange(self.num_envs) < self.num_envs // 2
        info = {**info, "final_observation": self._flag(info["final_observation"])}
        return self._flag(observation), state, reward, terminates, ~terminates, info


ENDING = SACConfig(
    num_envs=4, num_steps=4, gradient_steps=4, batch_size=32, buffer_size=800,
    learning_starts=64, gamma=0.9, tau=0.05, initial_alpha=1e-4, learn_alpha=False,
)  # fmt: skip
ENDING_STEPS = 6_400


@pytest.fixture(scope="module")
def ending_agent():
    env, env_params = make("gymnax::CartPole-v1", num_envs=ENDING.num_envs)
    actor, critic = mlp_network(Categorical(2)), mlp_network(DiscreteQNetwork(2))
    return SAC(ENDING, EndsEveryStep(env), env_params, actor, critic,
               optax.adam(1e-3), optax.adam(3e-3))  # fmt: skip


@pytest.fixture(scope="module")
def ending_run(ending_agent):
    before = ending_agent.init(jax.random.key(0))
    return before, ending_agent.train(jax.random.key(1), before, num_steps=ENDING_STEPS)


def test_truncation_bootstraps_from_final_observation_and_termination_does_not(
    ending_agent, ending_run
):
    # Every step pays 1 and ends an episode. With gamma 0.9 and a negligible fixed
    # temperature, a terminated step is worth exactly 1; a truncated one bootstraps
    # from its final observation, worth 1 / (1 - 0.9) = 10.
    _, state = ending_run
    q = jax.vmap(
        lambda params: ending_agent.critic.apply(
            params, state.observation[:, None], state.episode_start[:, None]
        )[1][:, 0]
    )(state.critic_params)  # [2 critics, num_envs, 2 actions]
    np.testing.assert_allclose(q[:, :2], 1.0, atol=0.3)
    np.testing.assert_allclose(q[:, 2:], 10.0, atol=1.5)
    np.testing.assert_allclose(state.metrics["alpha"], ENDING.initial_alpha, rtol=1e-6)


def test_same_key_gives_the_same_training_run(ending_agent, ending_run):
    before, after = ending_run
    again = ending_agent.train(jax.random.key(1), before, num_steps=ENDING_STEPS)
    for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(x, y)


def small_pendulum_agent() -> SAC:
    env, env_params = make("gymnax::Pendulum-v1", num_envs=4)
    config = SACConfig(num_envs=4, gradient_steps=4, batch_size=128, buffer_size=6_000,
                       learning_starts=1_000)  # fmt: skip

    def network(head) -> Network:
        return Network(FeatureExtractor(MLP((64,))), MLP((64,)), head)

    actor, critic = network(SquashedGaussian(1)), network(TwinContinuousQNetwork((64,)))
    return SAC(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def test_swings_up_pendulum_within_8k_steps():
    agent = small_pendulum_agent()
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(1), 2), states, 8_000
    )
    states = jax.vmap(lambda k, s: agent.evaluate(k, s, num_episodes=2))(
        jax.random.split(jax.random.key(2), 2), states
    )
    returns = np.nanmean(np.asarray(states.evaluation.returns), axis=(1, 2))
    # A random policy scores about -1200; measured at 8k steps: -156 and -124 (at 6k
    # one of these two seeds had not swung up yet: -954; 8 other seeds at 6k: -150 to
    # -484, as before the agents shared one skeleton).
    assert returns.mean() >= -500, returns
    assert returns.min() >= -800, returns
