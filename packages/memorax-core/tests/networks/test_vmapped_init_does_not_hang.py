"""Regression: jitted vmap over orthogonal initialisers must not deadlock.

jaxlib 0.10.x deadlocks XLA's CPU thread pool on batched QR decompositions
(what orthogonal initialisation runs) under ``jax.jit(jax.vmap(...))`` on
small machines, which hangs ``jax.vmap(agent.init)``. Run it in a
subprocess with a timeout so a hang fails the test instead of the session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(4):
                x = nn.Dense(64, kernel_init=nn.initializers.orthogonal(1.4))(x)
                x = nn.relu(x)
            return x

    net = Net()
    init = jax.jit(jax.vmap(net.init, in_axes=(0, None)))
    x = jnp.zeros((1, 64))
    for i in range(50):
        params = init(jax.random.split(jax.random.key(i), 4), x)
        jax.block_until_ready(params)
    print("done")
    """
)


def test_jitted_vmap_of_orthogonal_init_finishes() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("done")
