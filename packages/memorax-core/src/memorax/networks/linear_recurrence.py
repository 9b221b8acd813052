"""Elementwise linear recurrences ``h_t = a_t * h_{t-1} + b_t`` as a parallel scan."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _compose(
    earlier: tuple[jax.Array, jax.Array], later: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    # Applying (a1, b1) then (a2, b2) to h gives a2 (a1 h + b1) + b2.
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2


def linear_recurrence(
    decay: jax.Array,
    update: jax.Array,
    initial: jax.Array,
    episode_starts: jax.Array | None = None,
) -> jax.Array:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` by an associative scan over time.

    The carry is reset to zero before any step whose flag is set, by setting
    ``a_t = 0`` there: the recurrences built on this helper all start an
    episode from the zero state. ``log T`` depth, so whole sequences are
    fast; with ``T = 1`` it is one multiply-add. Real or complex.

    Args:
        decay: ``a``, broadcastable to ``update``.
        update: ``b: [B, T, ...]``.
        initial: ``h_{-1}: [B, ...]``.
        episode_starts: ``[B, T]`` bool, or None for no resets.

    Returns:
        ``h: [B, T, ...]`` (the final carry is ``h[:, -1]``).
    """
    decay = jnp.broadcast_to(decay, update.shape).astype(update.dtype)
    if episode_starts is not None:
        mask = jnp.reshape(episode_starts, episode_starts.shape + (1,) * (update.ndim - 2))
        decay = jnp.where(mask, jnp.zeros((), decay.dtype), decay)
    # Fold the incoming carry into the first update so the scan starts from zero.
    update = update.at[:, 0].add(decay[:, 0] * initial.astype(update.dtype))
    _, states = jax.lax.associative_scan(_compose, (decay, update), axis=1)
    return states
