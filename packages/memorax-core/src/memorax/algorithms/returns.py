"""Return targets, each scanned or shifted over a rollout or a replayed sequence.

Every target here follows same-step auto-reset: the value to bootstrap from
after step ``t`` is that of ``final_observation[t]`` (the last observation of
the episode step ``t`` belongs to, before any reset), termination cuts the
bootstrap and truncation keeps it.

**GAE** (Schulman et al., 2016), scanned backwards:

``delta_t = r_t + gamma * (1 - terminated_t) * V(final_observation_t) - V(observation_t)``

``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}``, with
``done_t = terminated_t | truncated_t`` and ``A_T = 0``.

**Peng's Q(lambda)** (Peng and Williams, 1996), scanned backwards like GAE,
with ``b_t = max_a Q(final_observation_t, a)``:

``G_t = r_t + gamma * (1 - terminated_t) * (b_t + lambda * (1 - done_t) * (G_{t+1} - b_t))``

The last step of a rollout has no ``G_{t+1}`` and uses the one-step target;
``lambda = 0`` gives one-step Q-learning targets, ``lambda = 1`` discounted
returns up to the episode or rollout end, bootstrapped there.

**n-step targets** for every start of a replayed sequence, stopping at the
end of the step's episode (:func:`n_step_targets`).

**Value rescaling** (Pohlen et al., 2018; used by R2D2):
``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` squashes large returns so one
network can regress values of very different scales; its exact inverse is
``h^-1(y) = sign(y) (((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1)``.
A Q-network trained with rescaling outputs ``h(Q)``; the n-step target
unrescales the bootstrap, adds the rewards and rescales the sum. Both are odd,
strictly increasing and elementwise, so ``argmax_a`` is the same in either
space.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "generalized_advantage_estimation",
    "inverse_value_rescaling",
    "n_step_q_targets",
    "n_step_targets",
    "q_lambda_returns",
    "value_rescaling",
]


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


def n_step_targets(
    rewards: jax.Array,
    bootstrap_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    n_step: int,
) -> jax.Array:
    """n-step Q-learning targets for every start of ``[B, L]`` stored sequences.

    ``G_t = sum_{k < m} gamma^k r_{t+k} + gamma^m (1 - terminated_{t+m-1}) b_{t+m-1}``
    where ``m <= n_step`` stops at the first step that ends its episode
    (``done``) and ``b_j`` is the bootstrap value of ``final_observation_j``.
    Starts too close to the end for ``n_step`` steps use what is left (the
    learner only reads starts that have all of them).

    Args:
        rewards, bootstrap_values: ``[B, L]`` float.
        terminated, done: ``[B, L]`` bool.
        gamma: discount factor.
        n_step: steps summed at most.

    Returns:
        ``[B, L]`` float32 targets.
    """
    length = rewards.shape[1]
    rewards = jnp.asarray(rewards, jnp.float32)
    continuing = 1.0 - jnp.asarray(terminated, jnp.float32)
    ended = jnp.asarray(done, bool)

    def shifted(x: jax.Array, k: int, fill: Any) -> jax.Array:
        """``x[:, t + k]``, with ``fill`` past the end."""
        pad = jnp.full((x.shape[0], k), fill, x.dtype)
        return jnp.concatenate([x[:, k:], pad], axis=1)[:, :length]

    target = jnp.zeros_like(rewards)
    alive = jnp.ones_like(rewards)  # 1 while steps t..t+k-1 stayed in t's episode
    for k in range(n_step):
        last = k == n_step - 1
        reward_k = shifted(rewards, k, 0.0)
        target = target + alive * gamma**k * reward_k
        # Step t+k is the last one summed if it ends the episode, is the n-th,
        # or is the last stored step.
        stop = shifted(ended, k, True) | last | (jnp.arange(length) + k >= length - 1)
        bootstrap = (
            gamma ** (k + 1) * shifted(continuing, k, 0.0) * shifted(bootstrap_values, k, 0.0)
        )
        target = target + alive * jnp.where(stop, bootstrap, 0.0)
        alive = alive * (1.0 - stop.astype(jnp.float32))
    return target


def n_step_q_targets(
    q: jax.Array,
    online_next: jax.Array,
    target_next: jax.Array,
    steps: dict[str, jax.Array],
    *,
    burn_in: int,
    length: int,
    gamma: float,
    n_step: int,
    double_q: bool = True,
    rescaling_epsilon: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """``Q(o_t, a_t)`` of replayed sequences' learned steps and their n-step targets.

    The learned steps are ``burn_in ... burn_in + length - 1``; the steps
    after them only supply rewards and bootstraps. The bootstrap of step
    ``t`` is the target network's value at ``final_observation_t`` of the
    online network's best action there (double Q, van Hasselt et al., 2016),
    or the target network's maximum.

    Args:
        q, online_next, target_next: ``[B, L, num_actions]``: the online network
            at every ``observation_t``, and the online and target networks at
            every ``final_observation_t``.
        steps: the stored ``action``, ``reward``, ``terminated`` and ``done``, ``[B, L]``.
        burn_in, length: the learned steps.
        gamma, n_step: see :func:`n_step_targets`.
        double_q: choose the bootstrap action with the online network.
        rescaling_epsilon: the networks output ``h(Q)`` (:func:`value_rescaling`
            with this epsilon): bootstraps are unrescaled, targets rescaled.

    Returns:
        ``(q_taken, targets)``, both ``[B, length]``; no gradient flows into the targets.
    """
    if double_q:
        best = jnp.argmax(online_next, axis=-1)[..., None]
        bootstrap = jnp.take_along_axis(target_next, best, axis=-1)[..., 0]
    else:
        bootstrap = jnp.max(target_next, axis=-1)
    if rescaling_epsilon is not None:
        bootstrap = inverse_value_rescaling(bootstrap, rescaling_epsilon)
    learned = slice(burn_in, burn_in + length)
    returns = n_step_targets(
        steps["reward"], bootstrap, steps["terminated"], steps["done"], gamma, n_step
    )[:, learned]
    if rescaling_epsilon is not None:
        returns = value_rescaling(returns, rescaling_epsilon)
    actions = steps["action"][:, learned, None]
    q_taken = jnp.take_along_axis(q[:, learned], actions, axis=-1)[..., 0]
    return q_taken, jax.lax.stop_gradient(returns)


def value_rescaling(x: jax.Array, epsilon: float = 1e-3) -> jax.Array:
    """``h(x) = sign(x) (sqrt(|x| + 1) - 1) + epsilon x``, elementwise, any shape."""
    x = jnp.asarray(x, jnp.float32)
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + epsilon * x


def inverse_value_rescaling(y: jax.Array, epsilon: float = 1e-3) -> jax.Array:
    """``h^-1(y)``, the exact inverse of :func:`value_rescaling`, elementwise, any shape."""
    y = jnp.asarray(y, jnp.float32)
    # (sqrt(1 + 4 eps a) - 1) / (2 eps) written as 2 a / (sqrt(1 + 4 eps a) + 1): no
    # cancellation for small eps in float32, and exact for eps = 0.
    a = jnp.abs(y) + 1.0 + epsilon
    root = 2.0 * a / (jnp.sqrt(1.0 + 4.0 * epsilon * a) + 1.0)
    return jnp.sign(y) * (jnp.square(root) - 1.0)
