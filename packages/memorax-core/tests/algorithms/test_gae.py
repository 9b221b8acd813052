"""GAE against a plain-Python reference, and the termination/truncation distinction."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from memorax.algorithms import generalized_advantage_estimation


def reference_gae(rewards, values, bootstrap, terminated, done, gamma, lam):
    steps, envs = rewards.shape
    advantages = np.zeros((steps, envs))
    for b in range(envs):
        next_advantage = 0.0
        for t in reversed(range(steps)):
            delta = rewards[t, b] + gamma * (1 - terminated[t, b]) * bootstrap[t, b] - values[t, b]
            next_advantage = delta + gamma * lam * (1 - done[t, b]) * next_advantage
            advantages[t, b] = next_advantage
    return advantages


def test_gae_matches_a_step_by_step_reference():
    rng = np.random.default_rng(0)
    steps, envs = 7, 3
    rewards = rng.normal(size=(steps, envs)).astype(np.float32)
    values = rng.normal(size=(steps, envs)).astype(np.float32)
    bootstrap = rng.normal(size=(steps, envs)).astype(np.float32)
    terminated = rng.random((steps, envs)) < 0.2
    done = terminated | (rng.random((steps, envs)) < 0.2)
    advantages, returns = generalized_advantage_estimation(
        jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(bootstrap),
        jnp.asarray(terminated), jnp.asarray(done), 0.9, 0.8,
    )  # fmt: skip
    expected = reference_gae(rewards, values, bootstrap, terminated, done, 0.9, 0.8)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, expected + values, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("terminated", "expected"), [(False, 1.0 + 0.5 * 10.0), (True, 1.0)])
def test_truncation_bootstraps_and_termination_does_not(terminated, expected):
    # One step that ends its episode: reward 1, final-observation value 10.
    ones = jnp.ones((1, 1))
    _, returns = generalized_advantage_estimation(
        rewards=ones, values=jnp.zeros((1, 1)), bootstrap_values=10.0 * ones,
        terminated=jnp.full((1, 1), terminated), done=jnp.ones((1, 1), bool),
        gamma=0.5, gae_lambda=0.95,
    )  # fmt: skip
    assert float(returns[0, 0]) == pytest.approx(expected)


def test_advantage_does_not_flow_across_episode_boundaries():
    # Step 0 ends an episode (truncated); a huge reward at step 1 must not reach step 0.
    rewards = jnp.asarray([[0.0], [1000.0]])
    zeros = jnp.zeros((2, 1))
    done = jnp.asarray([[True], [False]])
    advantages, _ = generalized_advantage_estimation(
        rewards, zeros, zeros, jnp.zeros((2, 1), bool), done, 0.99, 1.0
    )
    assert float(advantages[0, 0]) == 0.0
    assert float(advantages[1, 0]) == 1000.0
