"""Heads return the right shapes and distributions compute the right numbers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import (
    Alpha,
    Categorical,
    ContinuousQNetwork,
    DiscreteQNetwork,
    Gaussian,
    SquashedGaussian,
    TwinContinuousQNetwork,
    VNetwork,
    distributions,
)

B, T, H, A = 2, 3, 5, 4
FEATURES = jax.random.normal(jax.random.key(0), (B, T, H))


def init_apply(module, *inputs):
    params = jax.jit(module.init)(jax.random.key(1), *inputs)
    return jax.jit(module.apply)(params, *inputs)


def test_categorical_log_prob_entropy_and_mode_match_the_formulas() -> None:
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    dist = distributions.Categorical(logits)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(dist.log_prob(jnp.array([1, 2])), np.log([p[0, 1], p[1, 2]]), 1e-6)
    np.testing.assert_allclose(dist.entropy(), -(p * np.log(p)).sum(-1), rtol=1e-6)
    np.testing.assert_array_equal(dist.mode()[0], 1)
    samples = dist.sample(jax.random.key(0))
    assert samples.shape == (2,) and jnp.issubdtype(samples.dtype, jnp.integer)


def test_diagonal_gaussian_log_prob_and_entropy_match_the_formulas() -> None:
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[0.1, -0.3]])
    dist = distributions.DiagonalGaussian(mean, log_std)
    x = jnp.array([[0.2, 0.4]])
    std = np.exp(log_std)
    manual = (-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(dist.log_prob(x), manual, rtol=1e-6)
    np.testing.assert_allclose(
        dist.entropy(), (0.5 * np.log(2 * math.pi * math.e * std**2)).sum(-1), rtol=1e-6
    )
    np.testing.assert_array_equal(dist.mode(), mean)


def test_squashed_gaussian_samples_stay_in_bounds_with_finite_log_prob() -> None:
    dist = distributions.SquashedGaussian(jnp.full((1000, 2), 3.0), jnp.full((1000, 2), 0.5))
    actions, log_prob = dist.sample_and_log_prob(jax.random.key(0))
    assert bool(jnp.all(jnp.abs(actions) <= 1.0))
    assert bool(jnp.all(jnp.isfinite(log_prob)))
    assert bool(jnp.all(jnp.isfinite(dist.log_prob(jnp.ones((1000, 2))))))


def test_squashed_gaussian_log_prob_applies_the_tanh_change_of_variables() -> None:
    dist = distributions.SquashedGaussian(jnp.array([[0.3]]), jnp.array([[-0.2]]))
    x = jnp.array([[0.6]])
    u = np.arctanh(0.6)
    base = distributions.DiagonalGaussian(dist.mean, dist.log_std).log_prob(jnp.array([[u]]))
    np.testing.assert_allclose(dist.log_prob(x), base - np.log(1 - 0.6**2), rtol=1e-5)
    # Entropy is the pre-tanh Gaussian's: an upper bound on the squashed entropy.
    _, log_prob = distributions.SquashedGaussian(
        jnp.zeros((20_000, 1)), jnp.zeros((20_000, 1))
    ).sample_and_log_prob(jax.random.key(1))
    assert float(-log_prob.mean()) < float(
        distributions.SquashedGaussian(jnp.zeros((1,)), jnp.zeros((1,))).entropy()
    )


def test_distributions_are_pytrees_that_leave_jit() -> None:
    dist = jax.jit(lambda x: distributions.Categorical(x))(jnp.zeros((2, 3)))
    assert isinstance(dist, distributions.Categorical)
    assert len(jax.tree.leaves(dist)) == 1


def test_policy_heads_return_distributions_over_batch_and_time() -> None:
    categorical = init_apply(Categorical(A), FEATURES)
    assert categorical.logits.shape == (B, T, A)
    gaussian = init_apply(Gaussian(A), FEATURES)
    assert gaussian.mean.shape == gaussian.log_std.shape == (B, T, A)
    assert gaussian.log_prob(gaussian.sample(jax.random.key(0))).shape == (B, T)
    squashed = init_apply(SquashedGaussian(A), FEATURES)
    assert squashed.sample(jax.random.key(0)).shape == (B, T, A)


def test_value_heads_have_the_documented_shapes() -> None:
    assert init_apply(VNetwork(), FEATURES).shape == (B, T)
    assert init_apply(DiscreteQNetwork(A), FEATURES).shape == (B, T, A)
    action = jnp.ones((B, T, 2))
    assert init_apply(ContinuousQNetwork((8,)), FEATURES, action).shape == (B, T)
    assert init_apply(TwinContinuousQNetwork((8,)), FEATURES, action).shape == (2, B, T)


def test_dueling_q_values_average_to_the_state_value() -> None:
    head = DiscreteQNetwork(A, dueling=True)
    params = head.init(jax.random.key(1), FEATURES)
    q = head.apply(params, FEATURES)
    dense = params["params"]["Dense_1"]  # the value stream
    value = (FEATURES @ dense["kernel"] + dense["bias"])[..., 0]
    assert q.shape == (B, T, A)
    np.testing.assert_allclose(q.mean(-1), value, atol=1e-5)


def test_twin_q_estimates_are_independent() -> None:
    q = init_apply(TwinContinuousQNetwork((8,)), FEATURES, jnp.ones((B, T, 2)))
    assert not np.allclose(q[0], q[1])


def test_alpha_returns_its_positive_initial_temperature_and_rejects_nonpositive() -> None:
    alpha = Alpha(initial=0.2)
    np.testing.assert_allclose(alpha.apply(alpha.init(jax.random.key(0))), 0.2, rtol=1e-6)
    with pytest.raises(ValueError, match="must be positive"):
        Alpha(initial=0.0).init(jax.random.key(0))
