"""What the data-parallel tests share: the device count they need and float-tolerant comparison.

Importing this module raises a clear error when fewer than :data:`NUM_DEVICES`
JAX devices are visible (run the tests through ``nox -s multidevice``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import PartitionSpec

NUM_DEVICES = 4
RTOL, ATOL = 1e-4, 1e-5
"""Sharded and single-device runs differ only by float reassociation (all-reduced sums)."""

if jax.device_count() < NUM_DEVICES:
    raise RuntimeError(
        f"tests/multidevice need {NUM_DEVICES} JAX devices, {jax.device_count()} visible. Run "
        "them with `nox -s multidevice`, or set XLA_FLAGS=--xla_force_host_platform_device_count="
        f"{NUM_DEVICES} in the environment before starting pytest."
    )


def assert_trees_close(a: Any, b: Any) -> None:
    """Same structure, every leaf equal up to :data:`RTOL` / :data:`ATOL` (NaNs equal)."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL, atol=ATOL)


def assert_metrics_close(a: dict, b: dict, names: tuple[str, ...]) -> None:
    """``a[name]`` close to ``b[name]`` for each of ``names`` (the metric named on failure)."""
    for name in names:
        np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=ATOL, err_msg=name)


def assert_trees_equal(a: Any, b: Any) -> None:
    """Same structure, every leaf bit for bit equal."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def max_change(before: Any, after: Any) -> float:
    """The largest absolute change of any leaf: proof training moved the parameters."""
    changes = jax.tree.map(lambda x, y: float(np.abs(np.asarray(x) - np.asarray(y)).max()),
                           before, after)  # fmt: skip
    return max(jax.tree.leaves(changes))


def spec(array: jax.Array) -> PartitionSpec:
    """The ``PartitionSpec`` an array is laid out with."""
    return array.sharding.spec  # type: ignore[attr-defined]


def assert_env_axis_split(tree: Any, num_envs: int, axis: int = 0) -> None:
    """Every leaf with ``num_envs`` along ``axis`` is split over ``"data"`` there."""
    checked = 0
    for leaf in jax.tree.leaves(tree):
        if leaf.ndim > axis and leaf.shape[axis] == num_envs:
            assert spec(leaf)[axis] == "data", (leaf.shape, spec(leaf))
            assert len(leaf.sharding.device_set) == NUM_DEVICES
            checked += 1
    assert checked, "no leaf has an env axis"


def assert_replicated(tree: Any) -> None:
    """Every leaf is held whole on every device."""
    for leaf in jax.tree.leaves(tree):
        assert leaf.sharding.is_fully_replicated, (leaf.shape, leaf.sharding)


def train_single_and_sharded(
    make_agent: Callable[..., Any], train_steps: int
) -> tuple[Any, dict[str, Any], list[dict]]:
    """Train ``make_agent(None)`` and ``make_agent(NUM_DEVICES, metrics_callback=...)`` with
    the same keys for ``train_steps`` env steps.

    Returns the sharded agent, ``{"single": state, "sharded": state}`` and the
    metrics the sharded agent streamed (all delivered: effects are flushed).
    """
    records: list[dict] = []
    agents = {
        "single": make_agent(None),
        "sharded": make_agent(NUM_DEVICES, metrics_callback=records.append),
    }
    results = {
        name: agent.train(jax.random.key(1), agent.init(jax.random.key(0)), train_steps)
        for name, agent in agents.items()
    }
    jax.effects_barrier()
    return agents["sharded"], results, records


def train_two_seeds(agent: Any, train_steps: int) -> tuple[Any, list[Any]]:
    """Train seeds 0 and 1 of ``agent`` under one ``jax.vmap``.

    Seed 0 uses the keys of :func:`train_single_and_sharded` (init ``key(0)``,
    train ``key(1)``), so it must equal that run. Returns the stacked state
    and each seed's state.
    """
    init_keys = jax.numpy.stack([jax.random.key(0), jax.random.key(2)])
    train_keys = jax.numpy.stack([jax.random.key(1), jax.random.key(3)])
    states = jax.vmap(agent.init)(init_keys)
    stacked = jax.vmap(agent.train, in_axes=(0, 0, None))(train_keys, states, train_steps)
    return stacked, [jax.tree.map(lambda x, i=i: x[i], stacked) for i in (0, 1)]
