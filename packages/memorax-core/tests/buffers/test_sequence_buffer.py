"""Uniform sequence replay: validity, content, gating, errors, determinism, vmap."""

from __future__ import annotations

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memorax.buffers import SequenceBuffer, SequenceIndex

from .conftest import (
    CONFIGS,
    SAMPLE_BATCH,
    check_sequences,
    chunk,
    compiled,
    example,
    reference_for,
)

SETTINGS = settings(max_examples=20, deadline=None)


@st.composite
def operations(draw, name: str):
    """A random list of ("add", length) and ("sample", seed) operations."""
    lengths = CONFIGS[name].add_lengths
    add = st.tuples(st.just("add"), st.sampled_from(lengths))
    sample = st.tuples(st.just("sample"), st.integers(0, 2**31 - 1))
    return draw(st.lists(st.one_of(add, add, sample), min_size=1, max_size=14))


@st.composite
def scenarios(draw):
    name = draw(st.sampled_from(sorted(CONFIGS)))
    return name, draw(operations(name))


@SETTINGS
@given(scenarios())
def test_random_adds_and_samples_agree_with_the_reference_model(scenario):
    name, ops = scenario
    run = compiled(name, prioritised=False)
    reference = reference_for(name)
    state = run.buffer.init(example())
    for op, arg in ops:
        if op == "add":
            state = run.add(state, chunk(reference.num_envs, reference.steps, arg))
            reference.add(arg)
            valid, can_sample, _ = run.inspect(state)
            valid = np.asarray(valid)
            expected = np.zeros_like(valid)
            for env, step in reference.valid_starts():
                expected[env, step % reference.capacity] = True
            np.testing.assert_array_equal(valid, expected)
            assert bool(can_sample) == reference.can_sample()
        else:
            sample = run.sample(state, jax.random.key(arg), SAMPLE_BATCH)
            if reference.can_sample():
                check_sequences(sample, reference)
                np.testing.assert_array_equal(np.asarray(sample.weights), 1.0)
            else:
                np.testing.assert_array_equal(np.asarray(sample.weights), 0.0)


def fill(name: str, steps: int):
    run = compiled(name, prioritised=False)
    reference = reference_for(name)
    state = run.buffer.init(example())
    while reference.steps < steps:
        state = run.add(state, chunk(reference.num_envs, reference.steps, 1))
        reference.add(1)
    return run, reference, state


@pytest.mark.parametrize("steps", [5, 7, 12])
def test_sampling_covers_every_valid_start_uniformly_and_nothing_else(steps):
    # 5: partly filled; 7: exactly full; 12: wrapped, so valid windows cross the array end.
    run, reference, state = fill("wrapping", steps)
    counts: Counter = Counter()
    for seed in range(40):
        sample = run.sample(state, jax.random.key(seed), SAMPLE_BATCH)
        check_sequences(sample, reference)
        counts.update(
            zip(
                np.asarray(sample.indices.env).tolist(),
                np.asarray(sample.indices.step).tolist(),
                strict=True,
            )
        )
    valid = reference.valid_starts()
    assert set(counts) == valid, "every valid start, including mid-episode ones, must be drawn"
    draws = sum(counts.values())
    distance = 0.5 * sum(abs(counts[s] / draws - 1 / len(valid)) for s in valid)
    assert distance < 0.12


def test_a_fixed_key_gives_the_same_sample():
    run, _, state = fill("wrapping", 9)
    first = run.sample(state, jax.random.key(3), SAMPLE_BATCH)
    second = run.sample(state, jax.random.key(3), SAMPLE_BATCH)
    other = run.sample(state, jax.random.key(4), SAMPLE_BATCH)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first.indices.step), np.asarray(other.indices.step)) or (
        not np.array_equal(np.asarray(first.indices.env), np.asarray(other.indices.env))
    )


def test_vmap_over_seeds_matches_running_each_seed_alone():
    buffer = SequenceBuffer(num_envs=2, capacity=6, sequence_length=2)
    seeds = 3

    def run(key):
        state = buffer.init(example())
        for t in range(3):
            data = chunk(2, t, 1)
            offset = jax.random.randint(jax.random.fold_in(key, t), (), 0, 100)
            state = buffer.add(state, {**data, "id": data["id"] + offset})
        return buffer.sample(state, key, 5)

    keys = jax.random.split(jax.random.key(0), seeds)
    batched = jax.jit(jax.vmap(run))(keys)
    run_alone = jax.jit(run)
    for seed in range(seeds):
        alone = run_alone(keys[seed])
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(alone), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[seed], np.asarray(b))


def test_sampling_too_early_outside_jit_says_to_gate_on_can_sample():
    run, _, state = fill("wrapping", 3)
    with pytest.raises(ValueError, match=r"holds 3 steps per env but needs min_length=4"):
        run.buffer.sample(state, jax.random.key(0), 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0, "capacity": 4, "sequence_length": 2}, "num_envs must be an int >= 1"),
        ({"num_envs": 1, "capacity": 4, "sequence_length": 5}, "does not fit in capacity=4"),
        ({"num_envs": 1, "capacity": 4, "sequence_length": 2.0}, "sequence_length must be an int"),
        (
            {"num_envs": 1, "capacity": 4, "sequence_length": 3, "min_length": 2},
            "min_length=2 must lie between sequence_length=3 and capacity=4",
        ),
        (
            {"num_envs": 1, "capacity": 4, "sequence_length": 3, "min_length": 5},
            "min_length=5 must lie between",
        ),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequenceBuffer(**kwargs)


def test_min_length_defaults_to_the_sequence_length():
    assert SequenceBuffer(num_envs=1, capacity=8, sequence_length=3).min_length == 3


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"id": np.zeros((2, 1), np.int32)}, "structure differs from the example"),
        (
            {"id": np.zeros((2,), np.int32), "flag": np.zeros((2, 2), bool)},
            r"leaf \['flag'\] has shape \(2, 2\), with no time axis.*x\[:, None\]",
        ),
        (
            {"id": np.zeros((3, 1), np.int32), "flag": np.zeros((3, 1, 2), bool)},
            r"num_envs=2",
        ),
        (
            {"id": np.zeros((2, 8), np.int32), "flag": np.zeros((2, 8, 2), bool)},
            "T=8 steps per env; it takes 1 to capacity=7",
        ),
        (
            {"id": np.zeros((2, 1), np.int32), "flag": np.zeros((2, 1, 3), bool)},
            r"leaf \['flag'\] has shape \(2, 1, 3\), expected \(2, 1, 2\)",
        ),
        (
            {"id": np.zeros((2, 1), np.float32), "flag": np.zeros((2, 1, 2), bool)},
            r"leaf \['id'\] has dtype float32, which cannot be stored as int32",
        ),
    ],
)
def test_adding_a_mismatched_batch_is_refused_with_what_to_fix(batch, message):
    run = compiled("wrapping", prioritised=False)
    state = run.buffer.init(example())
    with pytest.raises(ValueError, match=message):
        run.buffer.add(state, batch)


def test_init_refuses_an_example_without_arrays():
    with pytest.raises(ValueError, match="no array leaves"):
        SequenceBuffer(num_envs=1, capacity=4, sequence_length=2).init({"carry": None})


def test_is_valid_rejects_overwritten_unfinished_and_unknown_starts():
    run, _, state = fill("wrapping", 10)  # stored steps 3..9, valid starts 3..7
    indices = SequenceIndex(env=jnp.array([0, 1, 0, 0, 2, -1]), step=jnp.array([3, 7, 2, 8, 5, 5]))
    np.testing.assert_array_equal(
        np.asarray(run.buffer.is_valid(state, indices)), [True, True, False, False, False, False]
    )
