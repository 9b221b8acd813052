"""Epsilon-greedy exploration for value-based agents: a linear schedule and the action choice."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["epsilon_greedy", "linear_epsilon"]


def linear_epsilon(env_steps: jax.Array, start: float, end: float, decay_steps: int) -> jax.Array:
    """Epsilon after ``env_steps`` env steps (all copies counted).

    Moves linearly from ``start`` (at step 0) to ``end`` (at ``decay_steps``)
    and stays at ``end`` afterwards; ``decay_steps = 0`` means ``end`` at once.

    Returns:
        float32 with the shape of ``env_steps``.
    """
    if decay_steps <= 0:
        return jnp.full(jnp.shape(env_steps), end, jnp.float32)
    fraction = jnp.clip(jnp.asarray(env_steps, jnp.float32) / decay_steps, 0.0, 1.0)
    return (start + fraction * (end - start)).astype(jnp.float32)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    """Per row, a uniformly random action with probability ``epsilon``, else ``argmax_a Q``.

    Args:
        key: PRNG key.
        q_values: ``[B, num_actions]``.
        epsilon: scalar (or ``[B]``) exploration rate.

    Returns:
        ``[B]`` int32 action indices in ``[0, num_actions)``.
    """
    explore_key, random_key = jax.random.split(key)
    batch, num_actions = q_values.shape
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    random = jax.random.randint(random_key, (batch,), 0, num_actions, jnp.int32)
    explore = jax.random.uniform(explore_key, (batch,)) < epsilon
    return jnp.where(explore, random, greedy)
