"""Run a nonlinear recurrent cell over time with per-step episode resets."""

from __future__ import annotations

from collections.abc import Callable

import jax

from memorax.networks.sequence_model import Carry, reset_where, time_major


def recurrent_scan(
    cell: Callable[[Carry, jax.Array], tuple[Carry, jax.Array]],
    carry: Carry,
    inputs: jax.Array,
    episode_starts: jax.Array,
    initial_carry: Carry,
) -> tuple[Carry, jax.Array]:
    """Apply ``cell(carry, x_t) -> (carry, y_t)`` for ``t = 0..T-1``.

    The carry is replaced by ``initial_carry`` before any step whose flag is
    set. The cell must be a pure function of arrays (no Flax submodule calls):
    models project their inputs for all steps at once before the scan and
    keep only the recurrent part inside it.

    Args:
        inputs: ``[B, T, ...]``; episode_starts: ``[B, T]`` bool.

    Returns:
        ``(final_carry, outputs [B, T, ...])``.
    """

    def step(carry: Carry, xs: tuple[jax.Array, jax.Array]) -> tuple[Carry, jax.Array]:
        x, start = xs
        return cell(reset_where(start, carry, initial_carry), x)

    carry, outputs = jax.lax.scan(step, carry, (time_major(inputs), time_major(episode_starts)))
    return carry, time_major(outputs)
