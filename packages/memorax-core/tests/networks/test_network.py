"""Network wiring: extractor -> torso -> head, with and without a carry."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import (
    GRU,
    MLP,
    Categorical,
    ContinuousQNetwork,
    FeatureExtractor,
    MultiHeadAttention,
    Network,
    OneHot,
    VNetwork,
)

B, T, OBS = 2, 5, (3, 2)
OBSERVATION = jax.random.normal(jax.random.key(0), (B, T, *OBS))
STARTS = jnp.zeros((B, T), bool).at[:, 0].set(True)
PREVIOUS_ACTION = jnp.zeros((B, T), jnp.int32)
PREVIOUS_REWARD = jnp.ones((B, T))


def memory_network() -> Network:
    extractor = FeatureExtractor(
        MLP((8,)),
        action_extractor=OneHot(3),
        reward_extractor=nn.Dense(2),
        done_extractor=nn.Dense(2),
    )
    return Network(extractor, GRU(8), Categorical(3))


def test_sequence_torso_threads_a_carry_and_returns_a_policy() -> None:
    network = memory_network()
    carry = network.initialize_carry(B)  # unbound: no params needed
    params = jax.jit(network.init)(
        jax.random.key(1), OBSERVATION, STARTS, carry, PREVIOUS_ACTION, PREVIOUS_REWARD
    )
    new_carry, policy = jax.jit(network.apply)(
        params, OBSERVATION, STARTS, carry, PREVIOUS_ACTION, PREVIOUS_REWARD
    )
    assert new_carry.shape == carry.shape == (B, 8)
    assert policy.logits.shape == (B, T, 3)
    # Acting one step at a time with the carry threaded gives the same policy.
    step, step_carry, step_logits = jax.jit(network.apply), carry, []
    for t in range(T):
        step_carry, step_policy = step(
            params,
            OBSERVATION[:, t : t + 1],
            STARTS[:, t : t + 1],
            step_carry,
            PREVIOUS_ACTION[:, t : t + 1],
            PREVIOUS_REWARD[:, t : t + 1],
        )
        step_logits.append(step_policy.logits)
    np.testing.assert_allclose(jnp.concatenate(step_logits, 1), policy.logits, atol=1e-5)


def test_previous_action_and_reward_change_the_features() -> None:
    network = memory_network()
    params = jax.jit(network.init)(
        jax.random.key(1), OBSERVATION, STARTS, None, PREVIOUS_ACTION, PREVIOUS_REWARD
    )
    apply = jax.jit(network.apply)
    _, base = apply(params, OBSERVATION, STARTS, None, PREVIOUS_ACTION, PREVIOUS_REWARD)
    _, other_action = apply(params, OBSERVATION, STARTS, None, PREVIOUS_ACTION + 1, PREVIOUS_REWARD)
    _, other_reward = apply(params, OBSERVATION, STARTS, None, PREVIOUS_ACTION, -PREVIOUS_REWARD)
    assert not np.allclose(base.logits, other_action.logits)
    assert not np.allclose(base.logits, other_reward.logits)


def test_plain_torso_has_no_carry() -> None:
    network = Network(FeatureExtractor(MLP((8,))), MLP((8,)), VNetwork())
    assert network.initialize_carry(B) is None
    params = jax.jit(network.init)(jax.random.key(1), OBSERVATION, STARTS)
    carry, values = jax.jit(network.apply)(params, OBSERVATION, STARTS)
    assert carry is None
    assert values.shape == (B, T)
    with pytest.raises(ValueError, match="has no carry"):
        network.apply(params, OBSERVATION, STARTS, jnp.zeros((B, 8)))


def test_action_keyword_reaches_a_continuous_q_head() -> None:
    network = Network(FeatureExtractor(MLP((8,))), GRU(8), ContinuousQNetwork((8,)))
    action = jnp.ones((B, T, 2))
    params = jax.jit(network.init)(jax.random.key(1), OBSERVATION, STARTS, action=action)
    _, q = jax.jit(network.apply)(params, OBSERVATION, STARTS, action=action)
    assert q.shape == (B, T)


def test_missing_previous_action_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="previous_action is None"):
        memory_network().init(jax.random.key(1), OBSERVATION, STARTS)


def test_observation_without_a_time_axis_is_a_clear_error() -> None:
    network = Network(FeatureExtractor(MLP((8,))), GRU(8), VNetwork())
    with pytest.raises(ValueError, match="time axis"):
        network.init(jax.random.key(1), OBSERVATION[:, 0], STARTS[:, 0])


def test_bad_model_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MultiHeadAttention(features=10, num_heads=4).initialize_carry(2)
    with pytest.raises(ValueError, match="must be even"):
        MultiHeadAttention(features=6, num_heads=2, positional="rope").initialize_carry(2)
    with pytest.raises(ValueError, match="positional must be one of"):
        MultiHeadAttention(features=8, positional="sinusoid").initialize_carry(2)  # type: ignore[arg-type]
