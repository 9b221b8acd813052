"""Mamba's selective scan (B and C shared by the heads) is exactly its recurrence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks.mamba import selective_scan

BATCH, STEPS, HEADS, STATE, HEAD_DIM = 2, 11, 3, 4, 5
STARTS = np.zeros((BATCH, STEPS), bool)
STARTS[0, [0, 4]] = True
STARTS[1, 7] = True


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 64])
def test_selective_scan_matches_the_recurrence_for_any_chunk_size(chunk_size: int) -> None:
    keys = jax.random.split(jax.random.key(2), 6)
    c = jax.random.normal(keys[0], (BATCH, STEPS, STATE))
    b = jax.random.normal(keys[1], (BATCH, STEPS, STATE))
    x = jax.random.normal(keys[2], (BATCH, STEPS, HEADS, HEAD_DIM))
    step = jax.nn.softplus(jax.random.normal(keys[3], (BATCH, STEPS, HEADS)))
    a = -jnp.exp(jax.random.normal(keys[4], (HEADS,)))
    initial = jax.random.normal(keys[5], (BATCH, HEADS, STATE, HEAD_DIM))

    run = jax.jit(selective_scan, static_argnums=7)
    final, outputs = run(c, b, x, step, a, jnp.asarray(STARTS), initial, chunk_size)

    c, b, x, step, a = (np.asarray(t) for t in (c, b, x, step, a))
    state, expected = np.asarray(initial), []
    for t in range(STEPS):
        decay = np.exp(step[:, t] * a) * ~STARTS[:, t, None]
        update = np.einsum("bk,bhv->bhkv", b[:, t], step[:, t, :, None] * x[:, t])
        state = decay[..., None, None] * state + update
        expected.append(np.einsum("bk,bhkv->bhv", c[:, t], state))
    np.testing.assert_allclose(outputs, np.stack(expected, 1), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(final, state, atol=1e-5, rtol=1e-5)
