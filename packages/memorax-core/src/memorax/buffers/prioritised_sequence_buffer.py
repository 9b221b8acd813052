"""Prioritised sequence replay (Schaul et al., 2016, proportional variant) over a sum-tree.

A priority ``p`` belongs to a sequence *start* (one per env and slot). A start
is drawn with probability ``P(i) = valid_i * p_i**alpha / sum_k valid_k * p_k**alpha``
where ``valid`` is the validity rule of :mod:`memorax.buffers.sequence_buffer`,
so invalid starts (unwritten, crossing the write head) have probability zero.
The importance weight of a draw is ``w_i = (N * P(i)) ** -beta`` normalised by
the largest weight in the batch, with ``N`` the number of valid starts.

Bookkeeping:

- a slot's priority is set to the largest priority seen so far (``1.0`` before
  any update) when its step is written, and takes effect once its window is
  complete and valid;
- ``update_priorities`` writes to exactly the (env, step) starts returned by
  ``sample``; an index whose start has since been overwritten, or that never
  named a valid start, is ignored (its priority belongs to a sequence that is
  gone) and does not raise the running maximum; every applied priority does;
- where the same start appears several times in one update, the last
  occurrence wins.

Bad priorities are refused, not stored. A NaN priority would become the running
maximum (every later write takes it, so new data is never drawn again) and an
infinite one makes the importance weights NaN; either way learning stops
silently. So ``update_priorities`` raises :class:`InvalidPriorityError` for any
NaN, infinite or negative entry, stale or not: at once outside ``jit``, and
inside it from a host callback that runs only when a bad entry is present
(the error then arrives wrapped in JAX's ``JaxRuntimeError``). The new state
depends on that check, so no consumer can see it first. As a second line of
defence the arithmetic follows the same rule: only applied, finite,
non-negative priorities are written, and only they can raise the running
maximum.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from memorax.buffers import sum_tree
from memorax.buffers.sequence_buffer import (
    BufferState,
    Sample,
    SequenceBuffer,
    SequenceIndex,
    _is_concrete,
)
from memorax.envs.host_callbacks import raise_if

__all__ = ["InvalidPriorityError", "PrioritisedBufferState", "PrioritisedSequenceBuffer"]


class InvalidPriorityError(ValueError):
    """A priority handed to ``update_priorities`` is NaN, infinite or negative."""


def _invalid_priorities_message(counts: np.ndarray) -> str:
    """The error for ``counts = [nan, inf, negative, total]`` (summed over any vmapped axes)."""
    nan, inf, negative, total = (int(c) for c in np.reshape(counts, (-1, 4)).sum(axis=0))
    found = ", ".join(
        f"{count} {what}"
        for count, what in ((nan, "NaN"), (inf, "infinite"), (negative, "negative"))
        if count
    )
    causes = []
    if nan or inf:
        causes.append(
            "A NaN or infinite priority comes from a NaN or infinite TD error: the loss is "
            "diverging (lower the learning rate, clip gradients, rescale values or rewards) "
            "or the environment returned NaN/inf rewards or observations."
        )
    if negative:
        causes.append("A negative priority usually means the absolute TD error was not taken.")
    return " ".join(
        [
            "update_priorities: priorities must be finite and >= 0;",
            f"got {found} among {total} priorities.",
            *causes,
            "Write priorities as |td error| + a small epsilon from a finite TD error. The",
            "update is refused because one such priority would silently stop prioritised replay.",
        ]
    )


@struct.dataclass
class PrioritisedBufferState(BufferState):
    """:class:`BufferState` plus the priorities.

    Attributes:
        priorities: ``[num_envs, capacity]`` float32, the raw priority of the
            sequence starting at each slot.
        tree: sum-tree over ``num_envs * capacity`` leaves (leaf ``env * capacity
            + slot``) holding ``valid * priority ** alpha``.
        max_priority: ``[]`` float32, the largest priority seen so far.
    """

    priorities: jax.Array = struct.field(metadata={"env_axis": 0})  # split like experience
    tree: sum_tree.SumTree
    max_priority: jax.Array


@dataclasses.dataclass(frozen=True)
class PrioritisedSequenceBuffer(SequenceBuffer):
    """Prioritised sequence replay; same layout and validity rule as :class:`SequenceBuffer`.

    Attributes:
        num_envs, capacity, sequence_length, min_length: as for :class:`SequenceBuffer`.
        priority_exponent: ``alpha >= 0``; ``0`` samples uniformly over valid starts.
        importance_sampling_exponent: default ``beta`` in ``[0, 1]`` for the
            importance weights; ``sample`` takes an override for annealing.
    """

    priority_exponent: float = 0.6
    importance_sampling_exponent: float = 0.4
    _gather_flat_rows: ClassVar[bool] = False  # see SequenceBuffer

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.priority_exponent >= 0:
            raise ValueError(f"priority_exponent must be >= 0; got {self.priority_exponent!r}.")
        if not 0 <= self.importance_sampling_exponent <= 1:
            raise ValueError(
                "importance_sampling_exponent must lie in [0, 1]; got "
                f"{self.importance_sampling_exponent!r}."
            )

    def init(self, example: Any) -> PrioritisedBufferState:
        """An empty buffer for pytrees shaped like ``example`` (see :meth:`SequenceBuffer.init`)."""
        base = super().init(example)
        return PrioritisedBufferState(
            experience=base.experience,
            steps=base.steps,
            priorities=jnp.zeros((self.num_envs, self.capacity), jnp.float32),
            tree=sum_tree.init(self.num_envs * self.capacity),
            max_priority=jnp.ones((), jnp.float32),
        )

    def _masses(self, state: PrioritisedBufferState, slots: jax.Array) -> jax.Array:
        """``[num_envs, len(slots)]`` leaf masses of ``slots`` in every env."""
        valid = self.valid_starts(state, slots)  # these slots only: O(len(slots))
        return jnp.where(valid, state.priorities[:, slots] ** self.priority_exponent, 0.0)

    def _refresh(self, state: PrioritisedBufferState, slots: jax.Array) -> PrioritisedBufferState:
        """Rewrite the tree leaves of ``slots`` (every env) from priorities and validity."""
        leaves = jnp.arange(self.num_envs)[:, None] * self.capacity + slots[None, :]
        tree = sum_tree.set_masses(state.tree, leaves.ravel(), self._masses(state, slots).ravel())
        return dataclasses.replace(state, tree=tree)

    def add(self, state: PrioritisedBufferState, batch: Any) -> PrioritisedBufferState:  # type: ignore[override]
        """Append ``T`` steps per env (as :meth:`SequenceBuffer.add`).

        The new steps' starts get the largest priority seen so far.
        """
        old_steps = state.steps
        state = super().add(state, batch)
        length = int(jnp.shape(jax.tree.leaves(batch)[0])[1])
        written = (old_steps + jnp.arange(length)) % self.capacity
        state = dataclasses.replace(
            state, priorities=state.priorities.at[:, written].set(state.max_priority)
        )
        # Only starts whose window touches the written steps change validity:
        # logical steps old_steps - L + 1 ... old_steps + T - 1.
        touched = length + self.sequence_length - 1
        if touched >= self.capacity:
            slots = jnp.arange(self.capacity)
        else:
            slots = (old_steps - self.sequence_length + 1 + jnp.arange(touched)) % self.capacity
        return self._refresh(state, slots)

    def probabilities(self, state: PrioritisedBufferState) -> jax.Array:
        """``[num_envs, capacity]`` draw probability of each start (zeros if none can be drawn)."""
        masses = sum_tree.leaves(state.tree).reshape(self.num_envs, self.capacity)
        total = sum_tree.total(state.tree)
        return jnp.where(total > 0, masses / jnp.where(total > 0, total, 1.0), 0.0)

    def sample(  # type: ignore[override]
        self,
        state: PrioritisedBufferState,
        key: jax.Array,
        batch_size: int,
        importance_sampling_exponent: float | jax.Array | None = None,
    ) -> Sample:
        """``batch_size`` sequences drawn independently with probability ``P(i)``.

        Args:
            state: the buffer state; ``can_sample(state)`` should be True and
                some valid start must have a positive priority (outside jit an
                error is raised otherwise; inside jit the weights are zero).
            key: PRNG key.
            batch_size: number of sequences (static).
            importance_sampling_exponent: ``beta`` for this batch (may be traced,
                for annealing); the configured default when None.

        Returns:
            :class:`Sample`: ``experience`` leaves ``[batch_size, sequence_length, ...]``,
            ``indices`` to hand back to :meth:`update_priorities`, and
            ``weights = (N * P(i)) ** -beta / max_batch (N * P(j)) ** -beta``.
        """
        self._check_sample_args(state, batch_size)
        total = sum_tree.total(state.tree)
        if _is_concrete(total) and not float(total) > 0:
            raise ValueError(
                "sample: every valid sequence start has priority zero, so there is nothing "
                "to draw from; keep priorities positive (e.g. |td error| + a small epsilon)."
            )
        beta = (
            self.importance_sampling_exponent
            if importance_sampling_exponent is None
            else importance_sampling_exponent
        )
        targets = jax.random.uniform(key, (batch_size,), jnp.float32) * total
        leaf = sum_tree.find_prefix(state.tree, targets)
        env, slot = leaf // self.capacity, leaf % self.capacity
        size = self.size(state)
        oldest_step = state.steps - size
        step = oldest_step + (slot - oldest_step) % self.capacity
        indices = SequenceIndex(env.astype(jnp.int32), step.astype(jnp.int32))

        ready = self.can_sample(state) & (total > 0)
        probability = state.tree.nodes[leaf + state.tree.num_padded_leaves] / jnp.where(
            ready, total, 1.0
        )
        num_valid = self.num_envs * jnp.maximum(size - self.sequence_length + 1, 1)
        weights = (num_valid * jnp.where(ready, probability, 1.0)) ** (-jnp.asarray(beta))
        weights = jnp.where(ready, weights / jnp.max(weights), 0.0).astype(jnp.float32)
        return Sample(self.gather(state, indices), indices, weights)

    def update_priorities(
        self,
        state: PrioritisedBufferState,
        indices: SequenceIndex,
        priorities: jax.Array,
        where: jax.Array | bool = True,
    ) -> PrioritisedBufferState:
        """Set the priorities of the sequences starting at ``indices``.

        Args:
            state: the buffer state.
            indices: from :meth:`sample` (``[batch]`` env and step).
            priorities: ``[batch]`` non-negative finite floats (e.g. ``|td| + eps``).
            where: ``[batch]`` or scalar bool; entries where it is False are
                ignored (e.g. a learner gating its updates on ``can_sample``
                without selecting between whole buffer states, which costs
                O(capacity)). Their priorities are still checked.

        Returns:
            The new state. Indices whose start has been overwritten since it was
            sampled (stale) or that never named a valid start are ignored; for a
            start listed several times the last occurrence wins.

        Raises:
            InvalidPriorityError: if any priority is NaN, infinite or negative
                (inside ``jit``: at run time, wrapped in ``JaxRuntimeError``; a
                host callback runs only then). The message counts each kind.
            ValueError: if ``priorities`` and ``indices`` differ in shape.
            TypeError: if ``indices`` is not a :class:`SequenceIndex`.
        """
        if not isinstance(indices, SequenceIndex):
            raise TypeError(
                "update_priorities expects the SequenceIndex from sample(...).indices; got "
                f"{type(indices).__name__}."
            )
        priorities = jnp.asarray(priorities, jnp.float32)
        if priorities.shape != jnp.shape(indices.step) or jnp.shape(indices.env) != jnp.shape(
            indices.step
        ):
            raise ValueError(
                f"update_priorities: priorities {priorities.shape} must match indices "
                f"(env {jnp.shape(indices.env)}, step {jnp.shape(indices.step)}), one per sequence."
            )
        counts = jnp.stack(
            [
                jnp.sum(jnp.isnan(priorities)),
                jnp.sum(jnp.isinf(priorities)),
                jnp.sum((priorities < 0) & jnp.isfinite(priorities)),
                jnp.asarray(priorities.size),
            ]
        ).astype(jnp.int32)
        step = jnp.asarray(indices.step, jnp.int32)
        if _is_concrete(priorities):
            if np.any(np.asarray(counts[:3])):
                raise InvalidPriorityError(_invalid_priorities_message(np.asarray(counts)))
        else:
            checked = raise_if(
                jnp.any(counts[:3] > 0),
                InvalidPriorityError,
                _invalid_priorities_message,
                counts,
                purpose="PrioritisedSequenceBuffer.update_priorities's check of priorities",
            )
            # Every write below goes through the (zero) check result, so XLA cannot
            # schedule any before the check: no later sample sees a bad priority.
            step = step + checked
        indices = SequenceIndex(jnp.asarray(indices.env, jnp.int32), step)
        # Bad entries have raised above; they are masked here too so that the
        # state, the running maximum above all, can never hold a non-finite value.
        acceptable = jnp.isfinite(priorities) & (priorities >= 0)
        apply = self.is_valid(state, indices) & acceptable & jnp.asarray(where, bool)
        slot = step % self.capacity
        env = jnp.clip(indices.env, 0, self.num_envs - 1)
        flat = env * self.capacity + slot
        keep = apply & sum_tree.last_occurrence(jnp.where(apply, flat, -1 - jnp.arange(flat.size)))
        scatter_at = jnp.where(keep, flat, self.num_envs * self.capacity)
        flat_priorities = state.priorities.ravel().at[scatter_at].set(priorities, mode="drop")
        masses = jnp.where(keep, priorities**self.priority_exponent, 0.0)
        return dataclasses.replace(
            state,
            priorities=flat_priorities.reshape(self.num_envs, self.capacity),
            tree=sum_tree.set_masses(state.tree, flat, masses, keep),
            max_priority=jnp.maximum(
                state.max_priority, jnp.max(jnp.where(apply, priorities, 0.0))
            ),
        )
