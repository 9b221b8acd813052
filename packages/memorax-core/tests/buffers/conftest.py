"""Buffer configurations shared by the buffer tests, each compiled once per session."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.buffers import PrioritisedSequenceBuffer, SequenceBuffer

from .reference import ReferenceReplay, step_id

SAMPLE_BATCH = 8
UPDATE_BATCH = 8


@dataclass(frozen=True)
class Config:
    """A buffer shape and the chunk lengths ``add`` is called with."""

    num_envs: int
    capacity: int
    sequence_length: int
    min_length: int
    add_lengths: tuple[int, ...]
    priority_exponent: float = 0.7
    importance_sampling_exponent: float = 0.5


CONFIGS = {
    # capacity not a power of two; chunks shorter than the sequence.
    "wrapping": Config(2, 7, 3, 4, (1, 3)),
    # one-step sequences; a chunk as long as the buffer (every slot refreshed).
    "single_step": Config(3, 4, 1, 2, (1, 4), priority_exponent=1.0),
}


def example() -> dict[str, Any]:
    """One env's step: an id to trace where data came from, and a bool flag."""
    return {"id": jnp.zeros((), jnp.int32), "flag": jnp.zeros((2,), bool)}


def chunk(num_envs: int, first_step: int, length: int) -> dict[str, np.ndarray]:
    """``length`` steps per env starting at logical step ``first_step``."""
    ids = np.array(
        [[step_id(env, first_step + t) for t in range(length)] for env in range(num_envs)],
        np.int32,
    )
    flag = np.stack([ids % 2 == 0, ids % 3 == 0], axis=-1)
    return {"id": ids, "flag": flag}


@dataclass(frozen=True)
class Compiled:
    """A buffer and its jitted functions.

    ``inspect(state)`` returns ``(valid_starts, can_sample, probabilities)``
    in one compiled call (probabilities is None for the uniform buffer).
    """

    buffer: SequenceBuffer
    add: Any
    sample: Any
    inspect: Any
    update_priorities: Any = None


@cache
def compiled(name: str, prioritised: bool) -> Compiled:
    """The buffer of ``CONFIGS[name]`` with its jitted methods (cached per session)."""
    config = CONFIGS[name]
    shape = {
        "num_envs": config.num_envs,
        "capacity": config.capacity,
        "sequence_length": config.sequence_length,
        "min_length": config.min_length,
    }
    if prioritised:
        buffer = PrioritisedSequenceBuffer(
            **shape,
            priority_exponent=config.priority_exponent,
            importance_sampling_exponent=config.importance_sampling_exponent,
        )
    else:
        buffer = SequenceBuffer(**shape)

    def inspect(state):
        probabilities = buffer.probabilities(state) if prioritised else None
        return buffer.valid_starts(state), buffer.can_sample(state), probabilities

    return Compiled(
        buffer,
        jax.jit(buffer.add),
        jax.jit(buffer.sample, static_argnums=2),
        jax.jit(inspect),
        jax.jit(buffer.update_priorities) if prioritised else None,
    )


def reference_for(name: str) -> ReferenceReplay:
    config = CONFIGS[name]
    return ReferenceReplay(
        config.num_envs,
        config.capacity,
        config.sequence_length,
        config.min_length,
        config.priority_exponent,
    )


def check_sequences(sample: Any, reference: ReferenceReplay) -> None:
    """Every sampled start is valid and its sequence is that env's stream from there."""
    envs = np.asarray(sample.indices.env)
    steps = np.asarray(sample.indices.step)
    ids = np.asarray(sample.experience["id"])
    for env, step, row in zip(envs, steps, ids, strict=True):
        assert reference.is_valid(int(env), int(step)), (
            f"sampled start (env {env}, step {step}) is not valid; "
            f"{reference.steps} steps written, capacity {reference.capacity}"
        )
        expected = [step_id(int(env), int(step) + t) for t in range(reference.sequence_length)]
        np.testing.assert_array_equal(row, expected)
    flags = np.asarray(sample.experience["flag"])
    np.testing.assert_array_equal(flags, np.stack([ids % 2 == 0, ids % 3 == 0], axis=-1))
