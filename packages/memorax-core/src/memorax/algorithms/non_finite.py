"""The non-finite guard: training stops at the first update whose parameters are NaN/inf.

A loss that goes NaN poisons the gradients and, through the optimizer, every
parameter in the same update; from then on training burns compute on NaNs
and the checkpoints written afterwards are useless. The guard tests, on the
device, whether every parameter leaf of the state (every field or key whose
name ends in ``params``) is finite after each update. Only when one is not
does a host callback run, and it raises :class:`NonFiniteError` naming the
update, the parameters and the agent's metrics of that update (where a loss
of NaN or inf shows which one went bad first). So a healthy run pays one
reduction over its parameters per update and no host round trip.

Parameters rather than metrics are tested because several metrics are NaN by
design (a replay agent's losses before learning starts, PPO's explained
variance of constant returns); a non-finite loss reaches the parameters in
the same update through its gradients.

``config.check_finite=False`` turns the guard off for people who want to train
on (e.g. a sweep in which some settings are expected to diverge).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs.host_callbacks import raise_if

__all__ = ["NonFiniteError", "check_finite_update"]


class NonFiniteError(FloatingPointError):
    """An update made the agent's parameters NaN or infinite; training stopped there."""


def parameter_leaves(state: Any) -> list[tuple[str, jax.Array]]:
    """``(path, leaf)`` for every float leaf under a field or key whose name ends in
    ``params`` (``params``, ``target_params``, ``actor_params``, ...)."""
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        names = [getattr(entry, "name", getattr(entry, "key", None)) for entry in path]
        in_parameters = any(isinstance(name, str) and name.endswith("params") for name in names)
        if in_parameters and jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            found.append((jax.tree_util.keystr(path), leaf))
    return found


def check_finite_update(
    agent_name: str, iteration_unit: str, state: Any, metrics: dict[str, jax.Array]
) -> jax.Array:
    """Raises :class:`NonFiniteError` from the host when a parameter of ``state`` is not
    finite; otherwise costs one on-device reduction.

    Args:
        agent_name: starts the message.
        iteration_unit: what an iteration is called (``"update"``).
        state: the state after the update (its ``update_count`` already counts it).
        metrics: the agent's own metrics of the update, shown in the message.

    Returns:
        ``[]`` int32 zero; add it to something the next update needs so that the
        check runs before training goes on.
    """
    leaves = parameter_leaves(state)
    if not leaves:
        return jnp.zeros((), jnp.int32)
    paths = [path for path, _ in leaves]
    bad_leaves = jnp.stack([~jnp.all(jnp.isfinite(leaf)) for _, leaf in leaves])
    names = sorted(metrics)
    values = jnp.stack([jnp.asarray(metrics[name], jnp.float32).reshape(()) for name in names])

    def message(update: np.ndarray, bad: np.ndarray, metric_values: np.ndarray) -> str:
        return _describe(agent_name, iteration_unit, paths, names, update, bad, metric_values)

    return raise_if(
        jnp.any(bad_leaves),
        NonFiniteError,
        message,
        state.update_count,
        bad_leaves,
        values,
        purpose=f"{agent_name}'s check for non-finite parameters (config.check_finite)",
    )


def _describe(
    agent: str,
    unit: str,
    paths: list[str],
    metric_names: list[str],
    update: np.ndarray,
    bad: np.ndarray,
    values: np.ndarray,
) -> str:
    """The error message; arrays have one leading axis per ``jax.vmap`` folded (seeds)."""
    update, bad = np.asarray(update), np.asarray(bad)
    values = np.asarray(values)
    # Seeds (or sweep settings) flattened, so one message covers every batch shape.
    update = update.reshape(-1)
    bad = bad.reshape(update.size, -1)
    values = values.reshape(update.size, -1)
    failing = [index for index in range(update.size) if bad[index].any()]
    first = failing[0]
    where = ""
    if update.size > 1:
        shown = ", ".join(str(i) for i in failing[:8])
        where = f" in batch element(s) {shown} of {update.size} (seeds or sweep settings)"
    leaves = [path for path, is_bad in zip(paths, bad[first], strict=True) if is_bad]
    listed = ", ".join(leaves[:2]) + (f" and {len(leaves) - 2} more" if len(leaves) > 2 else "")
    shown_metrics = ", ".join(
        f"{name}={value:.4g}" for name, value in zip(metric_names, values[first], strict=True)
    )
    non_finite = [n for n, v in zip(metric_names, values[first], strict=True) if not np.isfinite(v)]
    went_bad = (
        f"non-finite metric(s): {', '.join(non_finite)}"
        if non_finite
        else "no metric is non-finite, so the gradients or the optimizer went bad"
    )
    return (
        f"{agent}.train: {unit} {int(update[first])}{where} made the parameters NaN or "
        f"infinite ({listed}); {went_bad}. Metrics of that {unit}: {shown_metrics}. Training "
        f"stopped at this first bad {unit}: the state passed to train and any checkpoint "
        "saved before are the last good ones. Usual causes: a learning rate too high, a NaN "
        "or infinite reward or observation from the env, a loss that divides by zero. "
        "To train on regardless, build the agent with check_finite=False in its config "
        "(memorax train: --ALGO.check-finite false)."
    )
