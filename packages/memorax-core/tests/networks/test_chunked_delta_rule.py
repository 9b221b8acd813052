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


@pytest.mark.parametrize("size", [1, 2, 5, 16, 37])
def test_the_blockwise_unit_lower_inverse_inverts_i_plus_l(size: int) -> None:
    from memorax.networks.chunked_delta_rule import _unit_lower_inverse

    lower = np.tril(0.3 * np.random.default_rng(size).normal(size=(3, size, size)), -1)
    inverse = jax.jit(_unit_lower_inverse)(jnp.asarray(lower, jnp.float32))
    expected = np.linalg.inv(np.eye(size) + lower)
    np.testing.assert_allclose(inverse, expected, atol=1e-4, rtol=1e-4)


def _stepwise_reference(q, k, v, beta, log_decay, starts, initial):
    """The recurrence in a lax.scan, the reference for gradients."""

    def step(state, xs):
        q_t, k_t, v_t, b_t, g_t, s_t = xs
        decay = jnp.where(s_t[:, None], 0.0, 1.0 if g_t is None else jnp.exp(g_t))
        state = decay[..., None, None] * state
        recalled = jnp.einsum("bhk,bhkv->bhv", k_t, state)
        state = state + jnp.einsum("bhk,bhv->bhkv", k_t, b_t[..., None] * (v_t - recalled))
        return state, jnp.einsum("bhk,bhkv->bhv", q_t, state)

    time_major = [jnp.swapaxes(x, 0, 1) for x in (q, k, v, beta, log_decay, starts)]
    final, outputs = jax.lax.scan(step, initial, tuple(time_major))
    return final, jnp.swapaxes(outputs, 0, 1)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("chunk_size", [3, 8])
def test_chunked_delta_rule_gradients_equal_the_recurrences(chunk_size: int, gated: bool) -> None:
    q, k, v, beta, log_decay, initial = inputs(2.0)
    starts = jnp.asarray(STARTS)
    if not gated:
        log_decay = jnp.zeros_like(log_decay)

    def loss(run, q, k, v, beta, log_decay, initial):
        final, outputs = run(q, k, v, beta, log_decay, starts, initial)
        return jnp.sum(outputs**2) + jnp.sum(final**2)

    def chunked(q, k, v, beta, log_decay, starts, initial):
        decay = log_decay if gated else None
        return chunked_delta_rule(q, k, v, beta, decay, starts, initial, chunk_size)

    arguments = (q, k, v, beta, log_decay, initial)
    got = jax.jit(jax.grad(lambda *a: loss(chunked, *a), argnums=range(6)))(*arguments)
    want = jax.jit(jax.grad(lambda *a: loss(_stepwise_reference, *a), argnums=range(6)))(*arguments)
    for name, g, w in zip(["q", "k", "v", "beta", "log_decay", "initial"], got, want, strict=True):
        if name == "log_decay" and not gated:
            continue
        np.testing.assert_allclose(g, w, atol=2e-4, rtol=2e-4, err_msg=name)


@pytest.mark.parametrize("gated", [True, False])
def test_a_few_steps_run_the_recurrence_and_equal_the_chunked_form(gated: bool) -> None:
    q, k, v, beta, log_decay, initial = inputs(2.0)
    if not gated:
        log_decay = jnp.zeros_like(log_decay)
    starts = jnp.asarray(STARTS)
    decay = log_decay if gated else None
    # Three steps take the step-by-step path, eleven the chunked one.
    head = (x[:, :3] for x in (q, k, v, beta, log_decay, starts))
    q3, k3, v3, beta3, log_decay3, starts3 = head
    state, outputs = chunked_delta_rule(
        q3, k3, v3, beta3, log_decay3 if gated else None, starts3, initial, 2
    )
    _, long_outputs = chunked_delta_rule(q, k, v, beta, decay, starts, initial, 2)
    np.testing.assert_allclose(outputs, long_outputs[:, :3], atol=1e-5, rtol=1e-5)
    reference_state, _ = _stepwise_reference(q3, k3, v3, beta3, log_decay3, starts3, initial)
    np.testing.assert_allclose(state, reference_state, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [2, 4, 6])
def test_reading_every_other_step_gives_those_steps_outputs(chunk_size: int) -> None:
    # DeltaProduct's read-out: only after the last of a token's steps.
    q, k, v, beta, log_decay, initial = inputs(2.0)
    steps = STEPS - 1  # even
    q, k, v, beta, log_decay = (x[:, :steps] for x in (q, k, v, beta, log_decay))
    starts = jnp.asarray(STARTS[:, :steps])
    final, every = chunked_delta_rule(q, k, v, beta, log_decay, starts, initial, chunk_size)
    for length in (4, steps):  # the step-by-step path and the chunked one
        head = (x[:, :length] for x in (k, v, beta, log_decay, starts))
        k_, v_, beta_, decay_, starts_ = head
        state, odd = chunked_delta_rule(
            q[:, 1:length:2], k_, v_, beta_, decay_, starts_, initial, chunk_size, read_every=2
        )
        np.testing.assert_allclose(odd, every[:, 1:length:2], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(state, final, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="read_every"):
        chunked_delta_rule(q, k, v, beta, log_decay, starts, initial, 3, read_every=2)
