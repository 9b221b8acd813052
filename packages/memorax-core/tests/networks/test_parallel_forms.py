"""The parallel helpers compute exactly their step-by-step recurrences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import CausalConv, chunked_linear_attention, linear_recurrence

BATCH, STEPS = 2, 11
STARTS = np.zeros((BATCH, STEPS), bool)
STARTS[0, [0, 4]] = True
STARTS[1, 7] = True


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_linear_recurrence_matches_a_loop_and_resets_at_episode_starts(dtype) -> None:
    keys = jax.random.split(jax.random.key(0), 3)
    decay = jax.random.uniform(keys[0], (BATCH, STEPS, 3)).astype(dtype)
    update = jax.random.normal(keys[1], (BATCH, STEPS, 3)).astype(dtype)
    initial = jax.random.normal(keys[2], (BATCH, 3)).astype(dtype)

    states = jax.jit(linear_recurrence)(decay, update, initial, jnp.asarray(STARTS))

    decay, update = np.asarray(decay), np.asarray(update)
    h, expected = np.asarray(initial), []
    for t in range(STEPS):
        h = np.where(STARTS[:, t, None], 0.0, decay[:, t] * h) + update[:, t]
        expected.append(h)
    np.testing.assert_allclose(states, np.stack(expected, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 64])
def test_chunked_linear_attention_matches_the_recurrence_for_any_chunk_size(
    chunk_size: int,
) -> None:
    heads, key_dim, value_dim = 2, 3, 4
    keys = jax.random.split(jax.random.key(1), 5)
    q = jax.random.normal(keys[0], (BATCH, STEPS, heads, key_dim))
    k = jax.random.normal(keys[1], (BATCH, STEPS, heads, key_dim))
    v = jax.random.normal(keys[2], (BATCH, STEPS, heads, value_dim))
    log_decay = -jax.nn.softplus(jax.random.normal(keys[3], (BATCH, STEPS, heads)))
    initial = jax.random.normal(keys[4], (BATCH, heads, key_dim, value_dim))

    run = jax.jit(chunked_linear_attention, static_argnums=6)
    final, outputs = run(q, k, v, log_decay, jnp.asarray(STARTS), initial, chunk_size)

    q, k, v, log_decay = (np.asarray(x) for x in (q, k, v, log_decay))
    state, expected = np.asarray(initial), []
    for t in range(STEPS):
        decay = np.exp(log_decay[:, t]) * ~STARTS[:, t, None]
        state = decay[..., None, None] * state + np.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        expected.append(np.einsum("bhk,bhkv->bhv", q[:, t], state))
    np.testing.assert_allclose(outputs, np.stack(expected, 1), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(final, state, atol=1e-5, rtol=1e-5)


def test_causal_conv_sees_no_input_from_before_an_episode_start() -> None:
    conv = CausalConv(channels=1, kernel_size=3)
    inputs = jnp.arange(1.0, STEPS + 1.0).reshape(1, STEPS, 1)
    starts = jnp.zeros((1, STEPS), bool).at[0, 5].set(True)
    window = jnp.full((1, 2, 1), 100.0)  # inputs left over from a previous call
    params = {"params": {"kernel": jnp.ones((3, 1)), "bias": jnp.zeros((1,))}}

    new_window, outputs = jax.jit(conv.apply)(params, inputs, starts, window)

    # Sums of the last three inputs of the same episode, carried window included.
    expected = [201, 103, 6, 9, 12, 6, 13, 21, 24, 27, 30]
    np.testing.assert_allclose(outputs[0, :, 0], expected)
    np.testing.assert_allclose(new_window[0, :, 0], [10, 11])
