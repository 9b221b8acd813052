"""Run complete episodes with a fixed policy and record their returns and lengths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.custom_batching import custom_vmap

from memorax.envs import Environment

__all__ = ["EvaluationResult", "run_episodes"]

Policy = Callable[
    [Any, jax.Array, jax.Array, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]
]
"""``(carry, observation, episode_start, previous_action, previous_reward) -> (carry, action,
env_action)``, every array with leading axis ``num_envs`` (the env's). ``action`` is what the
policy sees as its previous action on the next step; ``env_action`` is what the env receives
(e.g. clipped to the action bounds)."""


class EvaluationResult(struct.PyTreeNode):
    """Episodes completed by an evaluation, per env copy.

    Attributes:
        returns: ``[num_envs, num_episodes]`` float32 undiscounted returns,
            NaN for an episode that did not finish within the step limit.
        lengths: ``[num_envs, num_episodes]`` int32 episode lengths, 0 where
            the episode did not finish.
        count: int32 scalar, number of finished episodes recorded (at most
            ``num_envs * num_episodes``).
    """

    returns: jax.Array
    lengths: jax.Array
    count: jax.Array

    @classmethod
    def empty(cls, num_envs: int, num_episodes: int) -> EvaluationResult:
        """The result of no evaluation yet: NaN returns, zero lengths, count 0."""
        return cls(
            returns=jnp.full((num_envs, num_episodes), jnp.nan, jnp.float32),
            lengths=jnp.zeros((num_envs, num_episodes), jnp.int32),
            count=jnp.zeros((), jnp.int32),
        )

    @property
    def mean_return(self) -> jax.Array:
        """Mean return over the finished episodes (NaN if none finished)."""
        return jnp.nanmean(self.returns, axis=(-2, -1))


def run_episodes(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    policy: Policy,
    policy_carry: Any,
    previous_action: jax.Array,
    num_episodes: int,
    max_steps: int,
) -> tuple[EvaluationResult, jax.Array, Any]:
    """Reset ``env`` and step it until every copy finished ``num_episodes`` episodes.

    Copies that are done keep stepping (the batch moves together) but record
    nothing more. Stops after ``max_steps`` steps per copy at the latest.

    Args:
        key: PRNG key for the reset and the env steps.
        env: a batched environment.
        env_params: its params (``None`` for callback backends).
        policy: see :data:`Policy`; should be deterministic for evaluation.
        policy_carry: the policy's initial carry for ``env.num_envs`` rows.
        previous_action: ``[num_envs, *action_shape]`` zeros fed before the first action.
        num_episodes: episodes to record per env copy.
        max_steps: step limit per copy.

    Returns:
        ``(result, steps, env_state)``: the :class:`EvaluationResult`, the
        number of steps taken (int32 scalar) and the final env state.
    """
    reset_key, loop_key = jax.random.split(key)
    observation, env_state = env.reset(reset_key, env_params)
    num_envs = env.num_envs
    rows = jnp.arange(num_envs)

    def not_finished(loop: tuple) -> jax.Array:
        *_, completed, _, step = loop
        return _any_in_batch(jnp.any(completed < num_episodes) & (step < max_steps))

    def one_step(loop: tuple) -> tuple:
        (key, env_state, observation, start, prev_action, prev_reward, carry,
         episode_return, episode_length, result, completed, count, step) = loop  # fmt: skip
        key, step_key = jax.random.split(key)
        carry, action, env_action = policy(carry, observation, start, prev_action, prev_reward)
        observation, env_state, reward, terminated, truncated, _ = env.step(
            step_key, env_state, env_action, env_params
        )
        done = terminated | truncated
        episode_return = episode_return + reward
        episode_length = episode_length + 1
        record = done & (completed < num_episodes)
        slot = jnp.minimum(completed, num_episodes - 1)
        result = EvaluationResult(
            returns=result.returns.at[rows, slot].set(
                jnp.where(record, episode_return, result.returns[rows, slot])
            ),
            lengths=result.lengths.at[rows, slot].set(
                jnp.where(record, episode_length, result.lengths[rows, slot])
            ),
            count=result.count,
        )
        completed = completed + record.astype(jnp.int32)
        count = count + jnp.sum(record, dtype=jnp.int32)
        episode_return = jnp.where(done, 0.0, episode_return)
        episode_length = jnp.where(done, 0, episode_length)
        prev_action = jnp.where(_expand(done, action), jnp.zeros_like(action), action)
        prev_reward = jnp.where(done, 0.0, reward)
        return (key, env_state, observation, done, prev_action, prev_reward, carry,
                episode_return, episode_length, result, completed, count, step + 1)  # fmt: skip

    zeros = jnp.zeros((num_envs,), jnp.float32)
    loop = (
        loop_key,
        env_state,
        observation,
        jnp.ones((num_envs,), bool),
        previous_action,
        zeros,
        policy_carry,
        zeros,
        jnp.zeros((num_envs,), jnp.int32),
        EvaluationResult.empty(num_envs, num_episodes),
        jnp.zeros((num_envs,), jnp.int32),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
    )
    loop = jax.lax.while_loop(not_finished, one_step, loop)
    result, count, step = loop[9], loop[11], loop[12]
    return result.replace(count=count), step, loop[1]


@custom_vmap
def _any_in_batch(flag: jax.Array) -> jax.Array:
    """``flag`` itself; under ``jax.vmap`` (over seeds), True if any seed's flag is True.

    Keeps the episode loop's predicate unbatched, so seeds that finished
    early step along with the others (recording nothing) instead of the loop
    becoming a batched ``while`` that refuses the envs' host-side checks.
    """
    return flag


@_any_in_batch.def_vmap
def _any_in_batch_vmap(axis_size: int, in_batched: list[bool], flag: jax.Array) -> tuple:
    del axis_size, in_batched
    return _any_in_batch(jnp.any(flag)), False


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return jnp.reshape(mask, mask.shape + (1,) * (like.ndim - mask.ndim))
