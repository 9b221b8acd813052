"""Peng's Q(lambda) returns (Peng and Williams, 1996), scanned backwards like GAE.

With same-step auto-reset, ``b_t = max_a Q(final_observation_t, a)``
is the value of the state step ``t`` led to, before any auto-reset.
Termination cuts the bootstrap; truncation keeps it; either ends the
lambda-mixing, because the next stored step belongs to another episode:

``G_t = r_t + gamma * (1 - terminated_t) * (b_t + lambda * (1 - done_t) * (G_{t+1} - b_t))``

with ``done_t = terminated_t | truncated_t``. The last step of the rollout
has no ``G_{t+1}`` and uses the one-step target ``r_t + gamma * (1 -
terminated_t) * b_t``. ``lambda = 0`` gives one-step Q-learning
targets; ``lambda = 1`` gives discounted returns up to the episode or
rollout end, bootstrapped there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["q_lambda_returns"]


def q_lambda_returns(
    rewards: jax.Array,
    bootstrap_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    q_lambda: float,
) -> jax.Array:
    """Q(lambda) targets of one rollout, time-major.

    Args:
        rewards: ``[T, B]`` reward of step ``t``.
        bootstrap_values: ``[T, B]`` ``max_a Q(final_observation_t, a)``.
        terminated: ``[T, B]`` bool, step ``t`` reached a terminal state.
        done: ``[T, B]`` bool, step ``t`` ended its episode (terminated or truncated).
        gamma: discount factor.
        q_lambda: mixing between one-step (0) and multi-step (1) targets.

    Returns:
        ``[T, B]`` float32 targets for ``Q(observation_t, action_t)``.
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    bootstrap_values = jnp.asarray(bootstrap_values, jnp.float32)
    continuing = 1.0 - jnp.asarray(terminated, jnp.float32)
    mixing = q_lambda * (1.0 - jnp.asarray(done, jnp.float32))

    def backward(next_return: jax.Array, step: tuple) -> tuple[jax.Array, jax.Array]:
        reward, bootstrap, keep, mix = step
        target = reward + gamma * keep * (bootstrap + mix * (next_return - bootstrap))
        return target, target

    # Seeding G_T with the last bootstrap makes the last step's target one-step.
    _, returns = jax.lax.scan(
        backward,
        bootstrap_values[-1],
        (rewards, bootstrap_values, continuing, mixing),
        reverse=True,
    )
    return returns
