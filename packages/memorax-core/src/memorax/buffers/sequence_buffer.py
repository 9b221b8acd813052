"""Fixed-size, per-env ring buffer that samples fixed-length sequences uniformly.

Layout: every leaf of the stored pytree is ``[num_envs, capacity, *leaf_shape]``.
All envs are written in lockstep, so one counter ``steps`` (steps written per
env so far) says where the write head is (``steps % capacity``) and how much is
filled (``min(steps, capacity)``). A *sequence* is ``sequence_length``
consecutive steps of one env's stream; it is named by a
:class:`SequenceIndex`: the env and the logical step (``0`` = the first step
ever added) of its first element.

Validity rule: a start is valid when its whole window lies in data that is
still stored, i.e. ``steps - min(steps, capacity) <= step`` and
``step + sequence_length <= steps``. Such a window may wrap around the end of
the array once the buffer is full, but never contains the write head (where the
newest data meets the oldest), never reaches unwritten slots, and can start
anywhere inside an episode. Windows may cross episode boundaries: the stored
episode-start flags let the learner reset its carry there (as R2D2 does).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class BufferState:
    """The data of a :class:`SequenceBuffer` (a pytree; vmap it over seeds).

    Attributes:
        experience: the stored pytree, each leaf ``[num_envs, capacity, *leaf_shape]``.
        steps: ``[]`` int32, steps added per env so far (it wraps after
            ``2**31 - 1`` steps per env).
    """

    # Split over devices along the env axis when an agent trains data-parallel
    # (the key memorax.algorithms.data_parallel.place reads); steps is replicated.
    experience: Any = struct.field(metadata={"env_axis": 0})
    steps: jax.Array


State = TypeVar("State", bound=BufferState)


@struct.dataclass
class SequenceIndex:
    """Names sampled sequences by their first step.

    Attributes:
        env: ``[batch]`` int32, the env whose stream the sequence is from.
        step: ``[batch]`` int32, the logical step of the sequence's first
            element in that env's stream (``0`` = the first step ever added).
            Its slot is ``step % capacity``.
    """

    env: jax.Array
    step: jax.Array


@struct.dataclass
class Sample:
    """A batch of sequences.

    Attributes:
        experience: the stored pytree, each leaf ``[batch, sequence_length, *leaf_shape]``.
        indices: where each sequence starts; hand them back to
            ``update_priorities`` with the priorities computed for these sequences.
        weights: ``[batch]`` float32 importance weights (all ones for uniform
            sampling), all zero where the buffer could not be sampled yet
            (``can_sample`` False) so an ungated update changes nothing.
    """

    experience: Any
    indices: SequenceIndex
    weights: jax.Array


def _is_concrete(*values: Any) -> bool:
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(values))


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")


@dataclasses.dataclass(frozen=True)
class SequenceBuffer:
    """Uniform sequence replay: pure ``init`` / ``add`` / ``sample`` / ``can_sample``.

    See the module docstring for the layout and the validity rule.

    Attributes:
        num_envs: number of env streams written in lockstep.
        capacity: steps kept per env (the oldest are overwritten).
        sequence_length: steps per sampled sequence.
        min_length: steps per env that must be written before ``can_sample``
            is True; at least ``sequence_length`` (the default).
    """

    num_envs: int
    capacity: int
    sequence_length: int
    min_length: int | None = None
    # How gather indexes the stored leaves, chosen by measurement (issue 21). Uniform
    # replay reads one flat index into [num_envs * capacity] rows: with an (env, slot)
    # pair XLA:CPU fused the same iteration's write into the gather of the leaves with
    # one number per step, which then read the buffer from before the write, so the
    # in-place write copied the whole buffer every iteration (DQN at 1M steps: 0.28 of
    # its speed at 10k). Prioritised replay keeps the pair, which shows no such copy
    # there, while flat rows made R2D2 at 1M steps compile for minutes instead of
    # seconds. tests/algorithms/test_replay_scaling.py guards both.
    _gather_flat_rows: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_int("num_envs", self.num_envs, 1)
        _check_int("capacity", self.capacity, 1)
        _check_int("sequence_length", self.sequence_length, 1)
        if self.sequence_length > self.capacity:
            raise ValueError(
                f"sequence_length={self.sequence_length} does not fit in capacity="
                f"{self.capacity} steps per env; raise capacity or shorten the sequences."
            )
        if self.min_length is None:
            object.__setattr__(self, "min_length", self.sequence_length)
        _check_int("min_length", self.min_length, 1)
        if not self.sequence_length <= self._min_steps <= self.capacity:
            raise ValueError(
                f"min_length={self.min_length} must lie between sequence_length="
                f"{self.sequence_length} and capacity={self.capacity}: a sequence must fit "
                "in what is written before sampling starts, and the buffer must be able to "
                "hold that much."
            )

    @property
    def _min_steps(self) -> int:
        """``min_length``, resolved (never None after ``__post_init__``)."""
        return cast(int, self.min_length)

    # -- state ------------------------------------------------------------------

    def init(self, example: Any) -> BufferState:
        """An empty buffer for pytrees shaped like ``example``.

        Args:
            example: one step of one env (no ``num_envs`` or time axis), e.g.
                ``jax.tree.map(lambda x: x[0], transition)``; arrays or
                ``jax.ShapeDtypeStruct`` leaves.

        Returns:
            A :class:`BufferState` with every leaf ``[num_envs, capacity, *leaf_shape]`` zeros.
        """
        if not jax.tree.leaves(example):
            raise ValueError(
                "The example transition has no array leaves; there is nothing to store."
            )

        def empty(leaf: Any) -> jax.Array:
            shape, dtype = jnp.shape(leaf), jnp.result_type(leaf)
            return jnp.zeros((self.num_envs, self.capacity, *shape), dtype)

        return BufferState(jax.tree.map(empty, example), jnp.zeros((), jnp.int32))

    def size(self, state: BufferState) -> jax.Array:
        """``[]`` int32, steps currently stored per env (``<= capacity``)."""
        return jnp.minimum(state.steps, self.capacity)

    def can_sample(self, state: BufferState) -> jax.Array:
        """``[]`` bool, True once ``min_length`` steps per env have been written."""
        return self.size(state) >= self._min_steps

    def valid_starts(self, state: BufferState, slots: jax.Array | None = None) -> jax.Array:
        """``[num_envs, capacity]`` bool, True at slots where a sequence may start; with
        ``slots`` (``[n]`` int), only those: ``[num_envs, n]``, without the whole mask."""
        slots = jnp.arange(self.capacity) if slots is None else slots
        size = self.size(state)
        oldest = (state.steps - size) % self.capacity
        offset = (slots - oldest) % self.capacity
        valid = offset + self.sequence_length <= size
        return jnp.broadcast_to(valid, (self.num_envs, *jnp.shape(slots)))

    def is_valid(self, state: BufferState, indices: SequenceIndex) -> jax.Array:
        """``[batch]`` bool, True where ``indices`` still names a stored, valid start."""
        step = jnp.asarray(indices.step, jnp.int32)
        env = jnp.asarray(indices.env, jnp.int32)
        return (
            (env >= 0)
            & (env < self.num_envs)
            & (step >= state.steps - self.size(state))
            & (step + self.sequence_length <= state.steps)
        )

    # -- writing ----------------------------------------------------------------

    def _check_batch(self, state: BufferState, batch: Any) -> tuple[int, Any]:
        """The batch's time length, and the batch cast to the stored dtypes."""
        stored_tree = jax.tree.structure(state.experience)
        if jax.tree.structure(batch) != stored_tree:  # type: ignore[operator]
            raise ValueError(
                "add: the batch's structure differs from the example given to init.\n"
                f"  init: {stored_tree}\n  add:  {jax.tree.structure(batch)}"
            )
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(batch)]
        leaves = jax.tree.leaves(batch)
        stored = jax.tree.leaves(state.experience)
        for path, leaf, old in zip(paths, leaves, stored, strict=True):
            if jnp.shape(leaf) == (self.num_envs, *old.shape[2:]):
                raise ValueError(
                    f"add expects every leaf shaped [num_envs={self.num_envs}, T, ...]; leaf "
                    f"{path} has shape {jnp.shape(leaf)}, with no time axis. For one step, add "
                    "one: jax.tree.map(lambda x: x[:, None], step)."
                )
        length = jnp.shape(leaves[0])[1] if jnp.ndim(leaves[0]) >= 2 else 0
        if not 1 <= length <= self.capacity:
            raise ValueError(
                f"add got T={length} steps per env; it takes 1 to capacity={self.capacity}."
            )
        cast = []
        for path, leaf, old in zip(paths, leaves, stored, strict=True):
            expected = (self.num_envs, length, *old.shape[2:])
            if jnp.shape(leaf) != expected:
                raise ValueError(
                    f"add: leaf {path} has shape {jnp.shape(leaf)}, expected {expected}: "
                    f"[num_envs={self.num_envs}, T={length}, *{tuple(old.shape[2:])} (its shape "
                    "in the example given to init)]."
                )
            dtype = jnp.result_type(leaf)
            if not jnp.can_cast(dtype, old.dtype, "same_kind"):
                raise ValueError(
                    f"add: leaf {path} has dtype {dtype}, which cannot be stored as {old.dtype} "
                    "(the dtype of the example given to init) without changing its kind."
                )
            cast.append(jnp.asarray(leaf).astype(old.dtype))
        return length, jax.tree.unflatten(stored_tree, cast)

    def add(self, state: State, batch: Any) -> State:
        """Append ``T`` steps to every env's stream.

        Args:
            state: the buffer state.
            batch: the stored pytree with leaves ``[num_envs, T, *leaf_shape]``,
                ``1 <= T <= capacity`` (static); steps are in time order.

        Returns:
            The new state; the oldest steps are overwritten once the buffer is full.
        """
        length, batch = self._check_batch(state, batch)
        slots = (state.steps + jnp.arange(length)) % self.capacity
        experience = jax.tree.map(
            lambda old, new: old.at[:, slots].set(new), state.experience, batch
        )
        return dataclasses.replace(state, experience=experience, steps=state.steps + length)

    # -- reading ----------------------------------------------------------------

    def gather(self, state: BufferState, indices: SequenceIndex) -> Any:
        """The sequences starting at ``indices``: leaves ``[batch, sequence_length, ...]``."""
        slots = (indices.step[:, None] + jnp.arange(self.sequence_length)) % self.capacity
        if self._gather_flat_rows:
            rows = indices.env[:, None] * self.capacity + slots
            return jax.tree.map(
                lambda leaf: leaf.reshape(-1, *leaf.shape[2:])[rows], state.experience
            )
        env = indices.env[:, None]
        return jax.tree.map(lambda leaf: leaf[env, slots], state.experience)

    def _check_sample_args(self, state: BufferState, batch_size: int) -> None:
        _check_int("batch_size", batch_size, 1)
        if _is_concrete(state.steps) and not bool(self.can_sample(state)):
            raise ValueError(
                f"sample: the buffer holds {int(self.size(state))} steps per env but needs "
                f"min_length={self.min_length} before it can be sampled. Gate updates on "
                "can_sample(state) (inside jit, samples taken too early get zero weights)."
            )

    def sample(self, state: BufferState, key: jax.Array, batch_size: int) -> Sample:
        """``batch_size`` sequences, start uniform over every valid (env, start) pair.

        Args:
            state: the buffer state; ``can_sample(state)`` should be True (outside
                jit an error is raised otherwise; inside jit the weights are zero).
            key: PRNG key.
            batch_size: number of sequences (static).

        Returns:
            :class:`Sample` with ``experience`` leaves ``[batch_size, sequence_length, ...]``
            and unit weights.
        """
        self._check_sample_args(state, batch_size)
        env_key, start_key = jax.random.split(key)
        size = self.size(state)
        num_starts = jnp.maximum(size - self.sequence_length + 1, 1)
        env = jax.random.randint(env_key, (batch_size,), 0, self.num_envs, jnp.int32)
        offset = jax.random.randint(start_key, (batch_size,), 0, num_starts, jnp.int32)
        indices = SequenceIndex(env, state.steps - size + offset)
        weights = jnp.where(self.can_sample(state), 1.0, 0.0) * jnp.ones(batch_size, jnp.float32)
        return Sample(self.gather(state, indices), indices, weights)
