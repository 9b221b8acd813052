"""The learning side of the replay agents (DQN, R2D2, SAC): store, learn, unroll, target.

Each iteration a replay agent stores its rollout in a sequence buffer
(:func:`example_step` gives the buffer its layout), then takes gradient
steps on sampled sequences once the buffer and ``learning_starts`` allow
(:func:`learn`). A sampled sequence is unrolled
one step at a time from a start carry (:func:`unroll`): each step's output
at ``observation_t`` is what is learned and the output at
``final_observation_t``, from the carry right after step ``t`` and before any
reset, is what step ``t`` bootstraps from, so a truncated episode bootstraps
with the memory it had. The first ``burn_in`` steps only warm the carry up:
no gradient flows back into them (R2D2's burn-in). Target networks trail the
online ones (:func:`periodic_target_update`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp

from memorax.algorithms.acting import StepInput
from memorax.algorithms.checks import (
    DISCOUNT,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    AgentConfig,
    check_replay_capacity,
    setting,
)
from memorax.algorithms.data_parallel import DataParallel, place, split
from memorax.buffers import BufferState, SequenceBuffer

__all__ = ["ReplayConfig", "learn", "periodic_target_update", "example_step", "store", "unroll"]


@dataclasses.dataclass(frozen=True)
class ReplayConfig(AgentConfig):
    """The settings every replay agent has (its config adds the rest).

    Attributes:
        num_envs: env copies stepped together; ``None`` (default) takes the
            env's ``num_envs``, a number must equal it.
        num_steps: steps per env copy in each iteration, before its gradient steps.
        gradient_steps: gradient steps per iteration (once learning has started).
        batch_size: sequences per gradient step.
        buffer_size: steps kept in replay, all env copies together; a
            multiple of ``num_envs`` (each copy keeps ``buffer_size / num_envs``).
        learning_starts: env steps (all copies) before the first gradient step.
        gamma: discount factor.
    """

    num_steps: int = setting(1, POSITIVE_INT)
    gradient_steps: int = setting(1, NON_NEGATIVE_INT)
    batch_size: int = setting(64, POSITIVE_INT)
    buffer_size: int = setting(100_000, POSITIVE_INT)
    learning_starts: int = setting(1_000, NON_NEGATIVE_INT)
    gamma: float = setting(0.99, DISCOUNT)

    def check(self) -> None:
        """The buffer splits over the env copies and each copy holds one sampled sequence."""
        check_replay_capacity(self, self._sequence_terms)

    @property
    def _sequence_terms(self) -> str:
        """How :attr:`stored_sequence_length` is made up, for messages."""
        return "burn_in_length + sequence_length + n_step - 1"

    @property
    def stored_sequence_length(self) -> int:
        """Steps per sampled sequence (unset lengths count as 1 and 0 until the agent sets
        them): burn-in, learned steps, and the steps that only supply their targets."""
        burn_in = self.burn_in_length or 0  # type: ignore[attr-defined]
        return burn_in + (self.sequence_length or 1) + getattr(self, "n_step", 1) - 1  # type: ignore[attr-defined]

    def sequence_buffer(self) -> SequenceBuffer:
        """A uniform buffer of this config's size and sequence length."""
        num_envs = cast(int, self.num_envs)  # set by the agent before it builds a buffer
        return SequenceBuffer(
            num_envs,
            self.buffer_size // num_envs,
            self.stored_sequence_length,
        )


def store(
    buffer: SequenceBuffer,
    buffer_state: BufferState,
    record: dict[str, Any],
    data_parallel: DataParallel | None,
) -> Any:
    """``buffer_state`` with a time-major rollout ``record`` appended; data-parallel, each
    device writes the steps of its own env copies into its part of the buffer."""
    steps = split(data_parallel, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), record))
    return place(data_parallel, buffer.add(buffer_state, steps))


Apply = Callable[[Any, StepInput, Any], tuple[Any, Any]]
"""``apply(carry, inputs [B, T], scored_action [B, T, ...] or None) -> (carry, output)``."""


def example_step(acting: dict[str, Any], *extra: str, carry: Any = None) -> dict[str, Any]:
    """One step of one env copy as a replay agent stores it, built from the acting fields.

    The stored fields are those of :meth:`~memorax.algorithms.acting.Transition.replay_record`:
    the step's inputs, ``action``, ``reward``, ``terminated``, ``final_observation`` and
    each ``extra`` name (``"done"`` or ``"carry"``, the acting carry before the step).
    """
    first = lambda x: x[0]  # noqa: E731
    example = {
        "observation": acting["observation"][0],
        "episode_start": acting["episode_start"][0],
        "previous_action": acting["previous_action"][0],
        "previous_reward": acting["previous_reward"][0],
        "action": acting["previous_action"][0],
        "reward": acting["previous_reward"][0],
        "terminated": acting["episode_start"][0],
        "final_observation": acting["observation"][0],
    }
    for name in extra:
        example[name] = acting["episode_start"][0] if name == "done" else jax.tree.map(first, carry)
    return example


def learn(
    key: jax.Array,
    learner: Any,
    gradient_step: Callable[[Any, jax.Array], tuple[Any, dict[str, jax.Array]]],
    num_steps: int,
    ready: jax.Array,
    *,
    self_gated: bool = False,
) -> tuple[Any, dict[str, jax.Array]]:
    """``num_steps`` gradient steps, applied when ``ready`` (computed and discarded before
    learning starts, so that a ``jax.vmap`` over seeds, which cannot branch around the
    host checks a step may make, runs the same program).

    Args:
        key: PRNG key, one split per step.
        learner: what the steps change; keep large constant data (the replay
            experience) out of it, since it is selected as a whole.
        gradient_step: ``(learner, key) -> (learner, stats)``.
        num_steps: gradient steps (static; 0 takes none).
        ready: scalar bool, the buffer can be sampled and learning has started.
        self_gated: ``learner`` is ``(gated, own)``: only ``gated`` is selected
            by ``ready``; ``own`` is carried through as the steps leave it, so
            the steps must change it only when ready themselves. For buffer-sized
            state (replay priorities and their sum tree), whose selection as a
            whole would cost O(capacity) every iteration.

    Returns:
        ``(learner, stats)``: the stats' means over the steps, NaN when not ready.
    """
    if not num_steps:
        names = jax.eval_shape(gradient_step, learner, key)[1]
        return learner, {name: jnp.full((), jnp.nan, jnp.float32) for name in names}
    new, stats = jax.lax.scan(gradient_step, learner, jax.random.split(key, num_steps))
    if self_gated:
        gated = jax.tree.map(lambda a, b: jnp.where(ready, a, b), new[0], learner[0])
        learner = (gated, new[1])
    else:
        learner = jax.tree.map(lambda a, b: jnp.where(ready, a, b), new, learner)
    return learner, {name: jnp.where(ready, jnp.mean(v), jnp.nan) for name, v in stats.items()}


def unroll(
    apply: Apply,
    carry: Any,
    steps: dict[str, jax.Array],
    *,
    burn_in: int = 0,
    memory: bool = True,
    following: bool = True,
    scored: jax.Array | None = None,
    scored_next: jax.Array | None = None,
) -> tuple[Any, Any]:
    """A network along ``[B, L]`` replayed sequences, at each step's observation and after it.

    Args:
        apply: the network on ``[B, T]`` inputs (see :data:`Apply`).
        carry: the carry before the first step (the initial or a stored one).
        steps: batch-major stored steps: the inputs ``observation``,
            ``episode_start``, ``previous_action``, ``previous_reward`` and
            ``action``, ``reward``, ``final_observation``.
        burn_in: no gradient flows back through the carry into the first
            ``burn_in`` steps.
        memory: False for a feed-forward network: every step in one call.
        following: also return the outputs at each ``final_observation_t``.
        scored, scored_next: ``[B, L, ...]`` actions a Q head scores at
            ``observation_t`` and at ``final_observation_t`` (``None``: none).

    Returns:
        ``(outputs, following_outputs)``, leaves ``[B, L, ...]``; the second is
        ``None`` unless ``following``.
    """
    batch, length = steps["observation"].shape[:2]
    inputs = StepInput(
        steps["observation"],
        steps["episode_start"],
        steps["previous_action"],
        steps["previous_reward"],
    )
    # The next observation of the same episode continues the carry.
    after = StepInput(
        steps["final_observation"],
        jnp.zeros((batch, length), bool),
        steps["action"],
        steps["reward"],
    )
    if not memory:
        outputs = apply(None, inputs, scored)[1]
        return outputs, apply(None, after, scored_next)[1] if following else None

    def step(carry: Any, x: tuple) -> tuple[Any, tuple]:
        index, inputs, after, scored, scored_next = x
        # where(c, stop_gradient(v), v) has zero gradient to v only where c holds.
        carry = jax.tree.map(
            lambda c: jnp.where(index == burn_in, jax.lax.stop_gradient(c), c), carry
        )
        carry, output = apply(carry, inputs.with_time_axis(), _time_axis(scored))
        next_output = None
        if following:
            next_output = apply(carry, after.with_time_axis(), _time_axis(scored_next))[1]
        return carry, jax.tree.map(lambda x: x[:, 0], (output, next_output))

    time_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (inputs, after, scored, scored_next))
    _, outputs = jax.lax.scan(step, carry, (jnp.arange(length), *time_major))
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), outputs)


def periodic_target_update(
    params: Any,
    target_params: Any,
    gradient_steps: jax.Array,
    interval: int,
    tau: float,
) -> Any:
    """``target <- tau * params + (1 - tau) * target`` on every ``interval``-th gradient step.

    ``tau = 1`` copies the online parameters (DQN's hard update every
    ``interval`` steps); ``interval = 1`` with a small ``tau`` is SAC's Polyak
    averaging after every gradient step. ``gradient_steps`` counts the steps
    taken *including* the one just applied.
    """
    update = gradient_steps % interval == 0
    return jax.tree.map(
        lambda p, t: jnp.where(update, tau * p + (1.0 - tau) * t, t), params, target_params
    )


def _time_axis(x: jax.Array | None) -> jax.Array | None:
    return None if x is None else x[:, None]
