"""Regression: a jitted vmap over Memorax's initialisers must not deadlock.

jaxlib 0.10.x can deadlock XLA's CPU thread pool on batched QR decompositions,
which is what ``jax.vmap`` makes of flax's orthogonal initialiser; it hung 3 of
8 runs of the script below with flax's initialiser on a loaded 2-core machine
(jax 0.10.2). Memorax's :func:`~memorax.networks.orthogonal` decomposes one
matrix at a time under vmap. The script runs in a subprocess with a timeout,
several times, so a hang fails the test instead of the session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import numpy as np
import pytest

from memorax.networks import orthogonal

SCRIPT = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp

    from memorax.networks import GRU, MLP

    mlp, gru = MLP((64, 64, 64, 64)), GRU(64)
    x = jnp.zeros((1, 1, 64))
    starts = jnp.zeros((1, 1), bool)

    def init(key):
        mlp_key, gru_key = jax.random.split(key)
        return mlp.init(mlp_key, x), gru.init(gru_key, x, starts, gru.initialize_carry(1))

    init = jax.jit(jax.vmap(init))
    for i in range(50):
        jax.block_until_ready(init(jax.random.split(jax.random.key(i), 4)))
    print("done")
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_jitted_vmap_of_memorax_inits_finishes(attempt: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("done")


@pytest.mark.parametrize("shape", [(8, 8), (8, 24), (24, 8), (4, 3, 6)])
def test_orthogonal_draws_what_flax_draws_alone_and_under_vmap(shape) -> None:
    ours, flax_init = orthogonal(1.4), nn.initializers.orthogonal(1.4)
    key = jax.random.key(7)
    np.testing.assert_array_equal(ours(key, shape), flax_init(key, shape))
    keys = jax.random.split(key, 3)
    batched = jax.jit(jax.vmap(lambda k: ours(k, shape)))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], flax_init(keys[i], shape), rtol=1e-6, atol=1e-6)
