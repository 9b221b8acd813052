"""An orthogonal initialiser that is safe under ``jax.jit(jax.vmap(...))`` on a CPU.

jaxlib 0.10 can deadlock XLA's CPU thread pool on a batched QR
decomposition, which is what ``jax.vmap`` makes of the QR inside
``nn.initializers.orthogonal`` when seeds are initialised together
(``jax.vmap(agent.init)``). Measured on a loaded 2-core machine with jax
0.10.2: 3 of 8 runs of 50 jitted, vmapped inits of four 64x64 layers hung.
:func:`orthogonal` draws exactly what flax's does, but under ``vmap`` it
decomposes one matrix at a time (``jax.custom_batching.sequential_vmap``),
so no batched QR is ever compiled.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["orthogonal"]


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Any:
    """``jax.nn.initializers.orthogonal(scale, column_axis)``, with the same values for
    the same key, that decomposes one matrix at a time under ``jax.vmap``."""
    draw_one = jax.nn.initializers.orthogonal(scale, column_axis)

    def init(key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
        @jax.custom_batching.sequential_vmap
        def draw(key: jax.Array) -> jax.Array:
            return draw_one(key, shape, dtype)

        return draw(key)

    return init
