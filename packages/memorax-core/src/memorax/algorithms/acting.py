"""Acting: running a policy in a batched env, for training rollouts and for evaluation.

What a Memorax network sees at each step is a :class:`StepInput`: the
observation, whether it starts an episode, and the previous action and
reward (zero at an episode start). :func:`rollout` steps every env copy
``num_steps`` times with a policy, threading its carries (the network resets
them itself where an episode starts) and the next step's inputs, and returns
the :class:`Transition` of every step. :func:`run_episodes` runs a fixed
policy until every copy has finished its episodes, for evaluation. The maps
between a policy's actions and the env's (offsets, clipping, rescaling) are
here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.custom_batching import custom_vmap

from memorax.envs import Box, Discrete, Environment, Space

__all__ = [
    "EvaluationResult",
    "StepInput",
    "Transition",
    "any_over_seeds",
    "apply_network",
    "env_action",
    "network_arguments",
    "rollout",
    "run_episodes",
    "scale_to_box",
    "zero_actions",
]


class StepInput(struct.PyTreeNode):
    """What a network sees at one step, for every env copy (leading axis ``num_envs``).

    Attributes:
        observation: ``[B, *obs_shape]``.
        episode_start: ``[B]`` bool, ``observation`` starts an episode.
        previous_action: ``[B]`` int or ``[B, A]`` float, zero at an episode start.
        previous_reward: ``[B]`` float32, zero at an episode start.
    """

    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array

    def with_time_axis(self) -> StepInput:
        """``[B, ...] -> [B, 1, ...]``: one step as the sequence a network takes."""
        return jax.tree.map(lambda x: x[:, None], self)

    def following(
        self, action: jax.Array, reward: jax.Array, observation: jax.Array, start: jax.Array
    ) -> StepInput:
        """The input after acting ``action`` and receiving ``reward``: ``observation``, and
        zero previous action and reward where it ``start``s an episode."""
        done = jnp.reshape(start, start.shape + (1,) * (action.ndim - start.ndim))
        return StepInput(
            observation=observation,
            episode_start=start,
            previous_action=jnp.where(done, jnp.zeros_like(action), action),
            previous_reward=jnp.where(start, 0.0, reward),
        )


class Transition(struct.PyTreeNode):
    """One rollout step of every env copy (time-major ``[T, B, ...]`` once scanned).

    Attributes:
        inputs: the :class:`StepInput` the policy acted on.
        action: the policy's action (before any map to the env's action).
        reward: float32 reward of the step.
        terminated: the step reached a terminal state.
        done: the step ended its episode (terminated or truncated).
        final_observation: the observation the step led to, before any
            auto-reset: what truncated episodes bootstrap from.
        extras: what the policy chose to keep (log-probabilities, values, carries).
        episode: the episode statistics of :class:`~memorax.envs.EpisodeStatistics`.
    """

    inputs: StepInput
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_observation: jax.Array
    extras: dict[str, Any]
    episode: dict[str, jax.Array]

    def replay_record(self, *names: str) -> dict[str, Any]:
        """The fields a replay buffer keeps of this step, as a dict: the inputs, the action,
        reward, termination, final observation and the named extra fields or extras."""
        record = {
            "observation": self.inputs.observation,
            "episode_start": self.inputs.episode_start,
            "previous_action": self.inputs.previous_action,
            "previous_reward": self.inputs.previous_reward,
            "action": self.action,
            "reward": self.reward,
            "terminated": self.terminated,
        }
        for name in names:
            record[name] = self.done if name == "done" else self.extras[name]
        record["final_observation"] = self.final_observation
        return record


Policy = Callable[[jax.Array, StepInput, tuple], tuple[tuple, jax.Array, dict[str, Any]]]
"""``policy(key, inputs, carries) -> (carries, action, extras)`` for one step of every copy."""


def network_arguments(inputs: StepInput, carry: Any) -> tuple:
    """A Network's positional arguments: observation, episode starts, carry, previous
    action and previous reward."""
    return (
        inputs.observation,
        inputs.episode_start,
        carry,
        inputs.previous_action,
        inputs.previous_reward,
    )


def apply_network(
    network: nn.Module, params: Any, inputs: StepInput, carry: Any, **head_inputs: Any
) -> tuple[Any, Any]:
    """``network.apply`` on ``[B, T]`` inputs: ``(carry, output)`` as a Network returns."""
    return network.apply(params, *network_arguments(inputs, carry), **head_inputs)


def rollout(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    policy: Policy,
    acting: tuple[Any, StepInput, tuple],
    num_steps: int,
    to_env: Callable[[jax.Array], jax.Array],
    split: Callable[[Any], Any],
) -> tuple[tuple[Any, StepInput, tuple], Transition]:
    """Step every env copy ``num_steps`` times with ``policy``.

    Args:
        key: PRNG key for the policy and the env.
        env, env_params: an :class:`~memorax.envs.EpisodeStatistics`-wrapped env.
        policy: see :data:`Policy`.
        acting: ``(env_state, inputs, carries)`` to start from.
        num_steps: steps per copy (static).
        to_env: policy action -> env action.
        split: lays out ``(acting, transition)`` over devices (the identity on one).

    Returns:
        ``(acting, transitions)``: where the env copies are now, and the
        time-major :class:`Transition` of every step.
    """

    def step(acting: tuple, keys: jax.Array) -> tuple[tuple, Transition]:
        env_state, inputs, carries = acting
        action_key, env_key = keys
        carries, action, extras = policy(action_key, inputs, carries)
        out = env.step(env_key, env_state, to_env(action), env_params)
        done = out.terminated | out.truncated
        reward = out.reward.astype(jnp.float32)
        transition = Transition(
            inputs=inputs,
            action=action,
            reward=reward,
            terminated=out.terminated,
            done=done,
            final_observation=out.info["final_observation"],
            extras=extras,
            episode=out.info["episode"],
        )
        acting = (out.state, inputs.following(action, reward, out.observation, done), carries)
        return split((acting, transition))

    # Both keys of every step from one split: each split is a loop of small kernels on
    # CPUs, a visible share of a cheap step.
    return jax.lax.scan(step, acting, jax.random.split(key, (num_steps, 2)))


# ---------------------------------------------------------------- actions


def zero_actions(space: Space, num_envs: int) -> jax.Array:
    """The previous action fed at an episode start: int32 ``[B]`` zeros for a ``Discrete``
    space, float32 ``[B, A]`` zeros (flat) otherwise."""
    if isinstance(space, Discrete):
        return jnp.zeros((num_envs,), jnp.int32)
    return jnp.zeros((num_envs, int(np.prod(space.shape))), jnp.float32)


def env_action(space: Space, action: jax.Array) -> jax.Array:
    """A policy's action -> the env's: discrete indices offset by the space's ``start``,
    flat continuous actions clipped to the ``Box`` and shaped like it."""
    if isinstance(space, Discrete):
        return action.astype(space.dtype) + space.start
    if not isinstance(space, Box):
        raise TypeError(f"Unsupported action space {space}.")
    low = np.asarray(space.low_array, np.float32).reshape(-1)
    high = np.asarray(space.high_array, np.float32).reshape(-1)
    action = jnp.clip(action, low, high)
    return action.reshape(action.shape[0], *space.shape)


def scale_to_box(action: jax.Array, space: Box) -> jax.Array:
    """``[B, A]`` actions in ``[-1, 1]`` -> ``[B, *space.shape]`` actions in ``[low, high]``.

    ``-1`` maps to ``low``, ``1`` to ``high``, linearly between; the result is
    clipped to the bounds so float rounding never leaves the space. Squashed
    policies (SAC's ``tanh`` Gaussian) learn in ``(-1, 1)`` and only the env
    sees the rescaled actions, so the same network fits any bounds.
    """
    low = np.asarray(space.low_array, np.float32).reshape(-1)
    high = np.asarray(space.high_array, np.float32).reshape(-1)
    scaled = jnp.asarray(low) + (jnp.asarray(action, jnp.float32) + 1.0) * (0.5 * (high - low))
    scaled = jnp.clip(scaled, low, high)
    return scaled.reshape(scaled.shape[0], *space.shape)


# ---------------------------------------------------------------- evaluation


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


FixedPolicy = Callable[[Any, StepInput], tuple[Any, jax.Array, jax.Array]]
"""``(carry, inputs) -> (carry, action, env_action)``, arrays with leading axis ``num_envs``.
``action`` is what the policy sees as its previous action on the next step; ``env_action``
is what the env receives."""


def run_episodes(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    policy: FixedPolicy,
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
        policy: see :data:`FixedPolicy`; should be deterministic for evaluation.
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
        return any_over_seeds(jnp.any(completed < num_episodes) & (step < max_steps))

    def one_step(loop: tuple) -> tuple:
        (
            key,
            env_state,
            inputs,
            carry,
            episode_return,
            episode_length,
            result,
            completed,
            count,
            step,
        ) = loop
        key, step_key = jax.random.split(key)
        carry, action, to_env = policy(carry, inputs)
        observation, env_state, reward, terminated, truncated, _ = env.step(
            step_key, env_state, to_env, env_params
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
        inputs = inputs.following(action, reward, observation, done)
        return (
            key,
            env_state,
            inputs,
            carry,
            episode_return,
            episode_length,
            result,
            completed,
            count,
            step + 1,
        )

    zeros = jnp.zeros((num_envs,), jnp.float32)
    inputs = StepInput(observation, jnp.ones((num_envs,), bool), previous_action, zeros)
    loop = (
        loop_key,
        env_state,
        inputs,
        policy_carry,
        zeros,
        jnp.zeros((num_envs,), jnp.int32),
        EvaluationResult.empty(num_envs, num_episodes),
        jnp.zeros((num_envs,), jnp.int32),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
    )
    loop = jax.lax.while_loop(not_finished, one_step, loop)
    result, count, step = loop[6], loop[8], loop[9]
    return result.replace(count=count), step, loop[1]


@custom_vmap
def any_over_seeds(flag: jax.Array) -> jax.Array:
    """``flag`` itself; under ``jax.vmap`` (over seeds), True if any seed's flag is True.

    Keeps a loop's or a branch's predicate unbatched, so that seeds step along
    with the others (each recording or applying only its own part) instead of
    the loop or ``cond`` becoming batched, which JAX refuses around host
    callbacks (the envs' and the replay buffers' checks).
    """
    return flag


@any_over_seeds.def_vmap
def _any_in_batch_vmap(axis_size: int, in_batched: list[bool], flag: jax.Array) -> tuple:
    del axis_size, in_batched
    return any_over_seeds(jnp.any(flag)), False
