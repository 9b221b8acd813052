"""The chunked delta rule computes exactly its step-by-step recurrence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import chunked_delta_rule

BATCH, STEPS, HEADS, KEY_DIM, VALUE_DIM = 2, 11, 2, 3, 4
STARTS = np.zeros((BATCH, STEPS), bool)
STARTS[0, [0, 4]] = True
STARTS[1, 7] = True


def inputs(max_beta: float):
    keys = jax.random.split(jax.random.key(1), 6)
    q = jax.random.normal(keys[0], (BATCH, STEPS, HEADS, KEY_DIM))
    k = jax.random.normal(keys[1], (BATCH, STEPS, HEADS, KEY_DIM))
    k = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
    v = jax.random.normal(keys[2], (BATCH, STEPS, HEADS, VALUE_DIM))
    beta = max_beta * jax.random.uniform(keys[3], (BATCH, STEPS, HEADS))
    log_decay = -jax.nn.softplus(jax.random.normal(keys[4], (BATCH, STEPS, HEADS)))
    initial = jax.random.normal(keys[5], (BATCH, HEADS, KEY_DIM, VALUE_DIM))
    return q, k, v, beta, log_decay, initial


@pytest.mark.parametrize("max_beta", [1.0, 2.0])
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 64])
def test_chunked_delta_rule_matches_the_recurrence_for_any_chunk_size(
    chunk_size: int, max_beta: float
) -> None:
    q, k, v, beta, log_decay, initial = inputs(max_beta)

    run = jax.jit(chunked_delta_rule, static_argnums=7)
    final, outputs = run(q, k, v, beta, log_decay, jnp.asarray(STARTS), initial, chunk_size)

    q, k, v, beta, log_decay = (np.asarray(x, np.float64) for x in (q, k, v, beta, log_decay))
    state, expected = np.asarray(initial, np.float64), []
    for t in range(STEPS):
        decay = np.exp(log_decay[:, t]) * ~STARTS[:, t, None]  # [B, H]
        state = decay[..., None, None] * state
        # S <- (I - b k k^T) S + b k v^T
        read = np.einsum("bhk,bhkv->bhv", k[:, t], state)
        write = beta[:, t, :, None] * (v[:, t] - read)
        state = state + np.einsum("bhk,bhv->bhkv", k[:, t], write)
        expected.append(np.einsum("bhk,bhkv->bhv", q[:, t], state))
    np.testing.assert_allclose(outputs, np.stack(expected, 1), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(final, state, atol=1e-5, rtol=1e-5)


def test_chunked_delta_rule_gradients_are_finite_with_strong_decay() -> None:
    q, k, v, beta, _, initial = inputs(1.0)
    # Decays far below float32's exp range across a chunk, and an episode start inside it.
    log_decay = jnp.full((BATCH, STEPS, HEADS), -30.0)

    def loss(log_decay: jax.Array) -> jax.Array:
        _, outputs = chunked_delta_rule(
            q, k, v, beta, log_decay, jnp.asarray(STARTS), initial, chunk_size=STEPS
        )
        return jnp.sum(outputs**2)

    grads = jax.jit(jax.grad(loss))(log_decay)
    assert bool(jnp.all(jnp.isfinite(grads)))
