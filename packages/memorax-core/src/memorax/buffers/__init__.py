"""Pure-JAX sequence replay for recurrent off-policy agents.

:class:`SequenceBuffer` samples fixed-length sequences uniformly;
:class:`PrioritisedSequenceBuffer` samples them in proportion to their
priorities over a sum-tree (:mod:`memorax.buffers.sum_tree`). Both are frozen
config objects with pure, jittable ``init`` / ``add`` / ``sample`` /
``can_sample``; states are pytrees, so they vmap over seeds. Priorities that
are NaN, infinite or negative are refused with :class:`InvalidPriorityError`,
inside ``jit`` too.
"""

from memorax.buffers import sum_tree
from memorax.buffers.prioritised_sequence_buffer import (
    InvalidPriorityError,
    PrioritisedBufferState,
    PrioritisedSequenceBuffer,
)
from memorax.buffers.sequence_buffer import BufferState, Sample, SequenceBuffer, SequenceIndex
from memorax.buffers.transition import Transition

__all__ = [
    "BufferState",
    "InvalidPriorityError",
    "PrioritisedBufferState",
    "PrioritisedSequenceBuffer",
    "Sample",
    "SequenceBuffer",
    "SequenceIndex",
    "Transition",
    "sum_tree",
]
