"""Per-iteration metrics: the shared episode statistics, their empty arrays, and
streaming them to the host from inside a jitted (and possibly vmapped) training loop.

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

__all__ = ["COUNTERS", "MetricsCallback", "emit", "empty_metrics", "episode_metrics"]

COUNTERS = frozenset({"episode_count", "env_steps", "gradient_steps", "update"})
"""Metrics that count (int32); every other metric is float32."""

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


def episode_metrics(episode: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Means over the episodes that ended in an iteration, and how many ended.

    Args:
        episode: :class:`~memorax.envs.EpisodeStatistics` info of every step,
            ``done``, ``return`` and ``length`` leaves ``[T, num_envs]``.

    Returns:
        ``episode_return`` and ``episode_length`` (NaN when no episode ended)
        and ``episode_count``.
    """
    count = jnp.sum(episode["done"], dtype=jnp.int32)
    per_episode = jnp.where(count > 0, 1.0 / count, jnp.nan)
    return {
        "episode_return": jnp.sum(episode["return"]) * per_episode,
        "episode_length": jnp.sum(episode["length"], dtype=jnp.float32) * per_episode,
        "episode_count": count,
    }


def empty_metrics(names: tuple[str, ...]) -> dict[str, jax.Array]:
    """``[0]`` arrays for every metric name: what a state holds before any training."""
    return {name: jnp.zeros((0,), jnp.int32 if name in COUNTERS else jnp.float32) for name in names}
