"""Stream per-update metrics from inside a jitted (and possibly vmapped) training loop.

``emit(callback, metrics)`` hands ``metrics`` (a dict of scalars) to
``callback`` on the host through ``jax.debug.callback``. Under ``jax.vmap``
over seeds the callback runs once per seed and ``metrics["seed"]`` says which
(its index along the vmapped axis; ``0`` without vmap), so a logger can keep
one curve per seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

__all__ = ["MetricsCallback", "emit"]

MetricsCallback = Callable[[dict[str, Any]], None]
"""Receives one update's metrics: a dict of Python scalars, including ``"seed"``."""


def emit(callback: MetricsCallback, metrics: dict[str, jax.Array]) -> None:
    """Send ``metrics`` (scalars) to ``callback`` on the host, once per seed under vmap."""
    names = tuple(sorted(metrics))

    def host(seeds: np.ndarray, *values: np.ndarray) -> None:
        # One host call per emission; rows are seeds when the caller was vmapped.
        for row, seed in enumerate(np.atleast_1d(seeds)):
            record = {
                name: np.atleast_1d(value)[row].item()
                for name, value in zip(names, values, strict=True)
            }
            record["seed"] = int(seed)
            callback(record)

    @custom_vmap
    def send(*values: jax.Array) -> jax.Array:
        jax.debug.callback(host, jnp.zeros((), jnp.int32), *values, ordered=False)
        return jnp.zeros((), jnp.int32)

    @send.def_vmap
    def _send_batch(axis_size: int, in_batched: list[bool], *values: jax.Array) -> Any:
        values = tuple(
            v if batched else jnp.broadcast_to(v, (axis_size, *jnp.shape(v)))
            for v, batched in zip(values, in_batched, strict=True)
        )
        jax.debug.callback(host, jnp.arange(axis_size, dtype=jnp.int32), *values)
        return jnp.zeros((axis_size,), jnp.int32), True

    send(*(jnp.asarray(metrics[name]) for name in names))
