"""Target networks that trail the online network: Polyak averages or periodic hard copies."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["periodic_target_update"]


def periodic_target_update(
    params: Any,
    target_params: Any,
    gradient_steps: jax.Array,
    interval: int,
    tau: float,
    applied: jax.Array | bool = True,
) -> Any:
    """``target <- tau * params + (1 - tau) * target`` on every ``interval``-th gradient step.

    ``tau = 1`` copies the online parameters (DQN's hard update every
    ``interval`` steps); ``interval = 1`` with a small ``tau`` is SAC's Polyak
    averaging after every gradient step.

    Args:
        params, target_params: pytrees of the same structure.
        gradient_steps: int32 scalar, gradient steps taken *including* the one
            just applied.
        interval: update on the steps that are multiples of it.
        tau: in ``(0, 1]``.
        applied: False when the gradient step was not applied (e.g. learning
            has not started); the target is then left as it is.

    Returns:
        The new target parameters.
    """
    update = jnp.logical_and(applied, gradient_steps % interval == 0)
    return jax.tree.map(
        lambda p, t: jnp.where(update, tau * p + (1.0 - tau) * t, t), params, target_params
    )
