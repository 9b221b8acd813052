"""Generalised advantage estimation (Schulman et al., 2016), scanned backwards in time.

With same-step auto-reset, the value to bootstrap from after step ``t`` is
the value of ``final_observation[t]`` (the last observation of the episode
that step ``t`` belongs to), not of the next stored observation, which may
already start a new episode. Termination cuts the bootstrap; truncation
keeps it:

``delta_t = r_t + gamma * (1 - terminated_t) * V(final_observation_t) - V(observation_t)``

``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}``, with
``done_t = terminated_t | truncated_t`` and ``A_T = 0``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["generalized_advantage_estimation"]


def generalized_advantage_estimation(
    rewards: jax.Array,
    values: jax.Array,
    bootstrap_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets of one rollout, time-major.

    Args:
        rewards: ``[T, B]`` reward of step ``t``.
        values: ``[T, B]`` ``V(observation_t)`` as seen when acting.
        bootstrap_values: ``[T, B]`` ``V(final_observation_t)``, the value of
            the state step ``t`` led to, before any auto-reset.
        terminated: ``[T, B]`` bool, step ``t`` reached a terminal state.
        done: ``[T, B]`` bool, step ``t`` ended its episode (terminated or
            truncated); stops the advantage from flowing across episodes.
        gamma: discount factor.
        gae_lambda: GAE's bias/variance trade-off (1: Monte Carlo, 0: TD(0)).

    Returns:
        ``(advantages [T, B], returns [T, B])`` with ``returns = advantages + values``.
    """
    continuing = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * continuing * bootstrap_values - values

    def backward(next_advantage: jax.Array, step: tuple[jax.Array, jax.Array]):
        delta, keep = step
        advantage = delta + gamma * gae_lambda * keep * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True
    )
    return advantages, advantages + values
