"""The update loop of the on-policy agents (PPO, PQN): bootstraps, minibatches, epochs.

After a rollout an on-policy agent needs the value of each step's
``final_observation`` (:func:`bootstrap_outputs`, one batched call with the
carry each step left), then epochs of minibatches over the rollout
(:func:`run_epochs`). Recurrent agents train on whole env sequences that
start from the carries stored at the start of the rollout, the first
``burn_in`` steps only refreshing them (:func:`sequence_apply`); feed-forward
agents shuffle single transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.algorithms.acting import StepInput, Transition, apply_network
from memorax.algorithms.checks import has_memory

__all__ = ["bootstrap_outputs", "loss_steps", "minibatches", "run_epochs", "sequence_apply"]


def bootstrap_outputs(
    network: nn.Module, params: Any, transitions: Transition, carry_after: Any
) -> Any:
    """``network`` at every ``final_observation_t`` of a time-major rollout, in one call.

    Each step continues the carry right after step ``t`` (before any reset),
    so a truncated episode bootstraps with the memory it had.

    Returns:
        The network's output for the ``T * B`` steps, ``[T * B, 1, ...]``.
    """
    flat = transitions.reward.size
    inputs = StepInput(
        observation=_merge_time(transitions.final_observation)[:, None],
        episode_start=jnp.zeros((flat, 1), bool),
        previous_action=_merge_time(transitions.action)[:, None],
        previous_reward=_merge_time(transitions.reward)[:, None],
    )
    return apply_network(network, params, inputs, jax.tree.map(_merge_time, carry_after))[1]


def minibatches(
    key: jax.Array, batch: Any, carries: Any, num_minibatches: int, recurrent: bool
) -> tuple[Any, Any]:
    """Shuffle a batch-major ``[num_envs, num_steps, ...]`` rollout into minibatch stacks.

    Recurrent: whole env sequences ``[M, num_envs / M, num_steps, ...]`` with
    their rollout-start ``carries``. Feed-forward: single transitions
    ``[M, num_envs * num_steps / M, 1, ...]`` (a time axis of length 1) and
    ``None`` carries.
    """
    if recurrent:
        order = jax.random.permutation(key, jax.tree.leaves(batch)[0].shape[0])

        def sequences(x: jax.Array) -> jax.Array:
            x = jnp.take(x, order, axis=0)
            return x.reshape(num_minibatches, -1, *x.shape[1:])

        return jax.tree.map(sequences, (batch, carries))
    num_envs, num_steps = jax.tree.leaves(batch)[0].shape[:2]
    order = jax.random.permutation(key, num_envs * num_steps)

    def transitions(x: jax.Array) -> jax.Array:
        x = x.reshape(num_envs * num_steps, 1, *x.shape[2:])
        x = jnp.take(x, order, axis=0)
        return x.reshape(num_minibatches, -1, *x.shape[1:])

    return jax.tree.map(transitions, batch), None


def sequence_apply(
    network: nn.Module, params: Any, inputs: StepInput, carry: Any, burn_in: int
) -> Any:
    """``network`` over ``[B, T]`` minibatch sequences from ``carry``; the first ``burn_in``
    steps only refresh the carry (no gradient flows back through them) and are dropped
    from the output. A feed-forward network ignores the carry."""
    if not has_memory(network):
        carry = None
    elif burn_in:
        carry, _ = apply_network(network, params, loss_steps(inputs, 0, burn_in), carry)
        carry = jax.lax.stop_gradient(carry)
    return apply_network(network, params, loss_steps(inputs, burn_in), carry)[1]


def loss_steps(tree: Any, burn_in: int, stop: int | None = None) -> Any:
    """The steps ``[burn_in:stop]`` of ``[B, T, ...]`` leaves (all of them for ``0, None``)."""
    if not burn_in and stop is None:
        return tree
    return jax.tree.map(lambda x: x[:, burn_in:stop], tree)


def run_epochs(
    key: jax.Array,
    learner: Any,
    batch: Any,
    carries: Any,
    minibatch_step: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]],
    *,
    num_epochs: int,
    num_minibatches: int,
    recurrent: bool,
    split: Callable[..., Any],
    stop: Callable[[dict[str, jax.Array]], jax.Array] | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """``num_epochs`` passes of ``minibatch_step`` over shuffled minibatches of ``batch``.

    Args:
        key: PRNG key for the shuffles.
        learner: what the steps change (parameters, optimizer states).
        batch, carries: the batch-major rollout and its rollout-start carries.
        minibatch_step: ``(learner, (minibatch, carries)) -> (learner, stats)``.
        num_epochs, num_minibatches, recurrent: see :func:`minibatches`.
        split: lays a minibatch stack out over devices along an axis.
        stop: optional; once it is True for an epoch's mean stats, the
            remaining epochs are skipped (PPO's ``target_kl``).

    Returns:
        ``(learner, stats)``, the stats averaged over the epochs that ran.
    """

    def run(learner: Any, epoch_key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        stacks = minibatches(epoch_key, batch, carries, num_minibatches, recurrent)
        # Each minibatch [M, size, ...] is itself split over the devices.
        learner, stats = jax.lax.scan(minibatch_step, learner, split(stacks, axis=1))
        return learner, jax.tree.map(jnp.mean, stats)

    keys = jax.random.split(key, num_epochs)
    if stop is None:
        learner, stats = jax.lax.scan(run, learner, keys)
        return learner, jax.tree.map(jnp.mean, stats)

    def epoch(carry: tuple, epoch_key: jax.Array) -> tuple[tuple, tuple]:
        learner, stopped = carry
        shapes = jax.eval_shape(run, learner, epoch_key)[1]
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        learner, stats = jax.lax.cond(
            stopped,
            lambda learner: (learner, zeros),
            lambda learner: run(learner, epoch_key),
            learner,
        )
        return (learner, stopped | stop(stats)), (stats, jnp.logical_not(stopped))

    (learner, _), (stats, ran) = jax.lax.scan(epoch, (learner, jnp.zeros((), bool)), keys)
    epochs_run = jnp.sum(ran)
    return learner, {name: jnp.sum(value * ran) / epochs_run for name, value in stats.items()}


def _merge_time(x: jax.Array) -> jax.Array:
    """``[T, B, ...] -> [T * B, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
