"""Prioritised sequence replay against the reference model: probabilities, bookkeeping, weights."""

from __future__ import annotations

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memorax.buffers import (
    InvalidPriorityError,
    PrioritisedSequenceBuffer,
    SequenceIndex,
    prioritised_sequence_buffer,
    sum_tree,
)
from memorax.envs import HostBackendUnavailableError, host_callbacks

from .conftest import (
    CONFIGS,
    SAMPLE_BATCH,
    UPDATE_BATCH,
    check_sequences,
    chunk,
    compiled,
    example,
    reference_for,
)
from .reference import ReferenceReplay

SETTINGS = settings(max_examples=20, deadline=None)
LARGE_BATCH = 4096

priorities = st.one_of(st.just(0.0), st.floats(0.0625, 10.0, width=32))


@st.composite
def scenarios(draw, min_ops: int = 1):
    """A config and a random list of add / sample / update operations.

    An update targets the starts of the latest sample (stale if adds came in
    between), with some entries replaced by arbitrary (env, step) pairs that
    may be overwritten, unfinished, or out of range.
    """
    name = draw(st.sampled_from(sorted(CONFIGS)))
    config = CONFIGS[name]
    add = st.tuples(st.just("add"), st.sampled_from(config.add_lengths))
    sample = st.tuples(st.just("sample"), st.integers(0, 2**31 - 1))
    update = st.tuples(
        st.just("update"),
        st.tuples(
            st.lists(priorities, min_size=UPDATE_BATCH, max_size=UPDATE_BATCH),
            st.lists(
                st.none() | st.tuples(st.integers(-1, config.num_envs), st.integers(-2, 40)),
                min_size=UPDATE_BATCH,
                max_size=UPDATE_BATCH,
            ),
        ),
    )
    ops = draw(st.lists(st.one_of(add, add, sample, update), min_size=min_ops, max_size=16))
    return name, ops


def check_state(run, state, reference: ReferenceReplay) -> None:
    """Tree invariants, and draw probabilities equal to the reference's."""
    nodes = np.asarray(state.tree.nodes)
    inner = np.arange(1, state.tree.num_padded_leaves)
    np.testing.assert_array_equal(nodes[inner], nodes[2 * inner] + nodes[2 * inner + 1])
    expected_masses = np.zeros((reference.num_envs, reference.capacity))
    for env, step in reference.valid_starts():
        mass = reference.priorities[(env, step)] ** reference.priority_exponent
        expected_masses[env, step % reference.capacity] = mass
    leaves = np.asarray(sum_tree.leaves(state.tree)).reshape(expected_masses.shape)
    np.testing.assert_allclose(leaves, expected_masses, rtol=1e-5)
    np.testing.assert_allclose(float(sum_tree.total(state.tree)), expected_masses.sum(), rtol=1e-5)
    expected = np.zeros_like(expected_masses)
    for (env, step), probability in reference.probabilities().items():
        expected[env, step % reference.capacity] = probability
    np.testing.assert_allclose(np.asarray(run.inspect(state)[2]), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(state.max_priority), reference.max_priority, rtol=1e-6)


def expected_weights(sample, reference: ReferenceReplay, beta: float) -> np.ndarray:
    probabilities = reference.probabilities()
    drawn = [
        probabilities[(int(e), int(s))]
        for e, s in zip(
            np.asarray(sample.indices.env), np.asarray(sample.indices.step), strict=True
        )
    ]
    raw = (len(reference.valid_starts()) * np.asarray(drawn)) ** -beta
    return raw / raw.max()


def replay(name: str, ops, check_every_step: bool = True):
    """Runs ``ops`` on the jitted buffer and the reference, checking after each."""
    run = compiled(name, prioritised=True)
    config = CONFIGS[name]
    reference = reference_for(name)
    state = run.buffer.init(example())
    last = SequenceIndex(jnp.zeros(UPDATE_BATCH, jnp.int32), jnp.zeros(UPDATE_BATCH, jnp.int32))
    for op, arg in ops:
        if op == "add":
            state = run.add(state, chunk(reference.num_envs, reference.steps, arg))
            reference.add(arg)
        elif op == "sample":
            sample = run.sample(state, jax.random.key(arg), SAMPLE_BATCH)
            last = jax.tree.map(lambda x: x[:UPDATE_BATCH], sample.indices)
            if reference.can_sample() and reference.probabilities():
                check_sequences(sample, reference)
                drawn = zip(
                    np.asarray(sample.indices.env), np.asarray(sample.indices.step), strict=True
                )
                probabilities = reference.probabilities()
                assert all(probabilities.get((int(e), int(s)), 0) > 0 for e, s in drawn)
                np.testing.assert_allclose(
                    np.asarray(sample.weights),
                    expected_weights(sample, reference, config.importance_sampling_exponent),
                    rtol=1e-4,
                )
            else:
                np.testing.assert_array_equal(np.asarray(sample.weights), 0.0)
        else:
            values, overrides = arg
            envs = np.asarray(last.env).copy()
            steps = np.asarray(last.step).copy()
            for k, override in enumerate(overrides):
                if override is not None:
                    envs[k], steps[k] = override
            indices = SequenceIndex(jnp.asarray(envs, jnp.int32), jnp.asarray(steps, jnp.int32))
            state = run.update_priorities(state, indices, jnp.asarray(values, jnp.float32))
            for env, step, value in zip(envs, steps, values, strict=True):
                reference.update(int(env), int(step), float(np.float32(value)))
        if check_every_step:
            check_state(run, state, reference)
    return run, reference, state


@SETTINGS
@given(scenarios())
def test_random_adds_samples_and_updates_agree_with_the_reference_model(scenario):
    replay(*scenario)


@st.composite
def drawable_scenarios(draw):
    """A scenario that ends ready to sample, with at least one start of positive mass.

    It ends with adds of the shortest length that still covers a whole
    sequence, so the newest valid start was written by the last add with the
    running maximum priority (>= 1); more such adds reach ``min_length``.
    """
    name, ops = draw(scenarios(min_ops=6))
    config = CONFIGS[name]
    length = min(n for n in config.add_lengths if n >= config.sequence_length)
    steps = sum(arg for op, arg in ops if op == "add")
    ops = [*ops, ("add", length)]
    steps += length
    while min(steps, config.capacity) < config.min_length:
        ops.append(("add", length))
        steps += length
    return name, ops


@settings(max_examples=8, deadline=None)
@given(drawable_scenarios(), st.integers(0, 2**31 - 1))
def test_draw_frequencies_match_the_reference_distribution(scenario, seed):
    name, ops = scenario
    run, reference, state = replay(name, ops, check_every_step=False)
    probabilities = reference.probabilities()
    assert reference.can_sample() and probabilities, "the scenario must end ready to draw"
    sample = run.sample(state, jax.random.key(seed), LARGE_BATCH)
    counts = Counter(
        zip(
            np.asarray(sample.indices.env).tolist(),
            np.asarray(sample.indices.step).tolist(),
            strict=True,
        )
    )
    assert set(counts) <= {start for start, p in probabilities.items() if p > 0}
    starts = set(counts) | set(probabilities)
    distance = 0.5 * sum(abs(counts[s] / LARGE_BATCH - probabilities.get(s, 0)) for s in starts)
    # A correct sampler is near 0.02 here; 0.07 is several standard deviations away.
    assert distance < 0.07, f"total variation {distance:.3f} from the reference distribution"


def ready_state(name: str = "wrapping", steps: int = 10):
    run = compiled(name, prioritised=True)
    reference = reference_for(name)
    state = run.buffer.init(example())
    while reference.steps < steps:
        state = run.add(state, chunk(reference.num_envs, reference.steps, 1))
        reference.add(1)
    return run, reference, state


def test_an_update_for_an_overwritten_start_is_ignored():
    run, _, state = ready_state()  # steps 3..9 stored, starts 3..7 valid
    indices = SequenceIndex(jnp.full(UPDATE_BATCH, 0), jnp.full(UPDATE_BATCH, 3))
    state = run.add(state, chunk(2, 10, 1))  # overwrites step 3's slot with step 10
    before = np.asarray(state.priorities)
    updated = run.update_priorities(state, indices, jnp.full(UPDATE_BATCH, 50.0))
    np.testing.assert_array_equal(np.asarray(updated.priorities), before)
    np.testing.assert_array_equal(np.asarray(updated.tree.nodes), np.asarray(state.tree.nodes))
    assert float(updated.max_priority) == 1.0, "a stale priority must not raise the maximum"


def test_an_update_lands_on_the_sampled_start_and_new_steps_get_the_max_priority():
    run, _, state = ready_state()
    indices = SequenceIndex(
        jnp.array([1, 0, 0, 0, 0, 0, 0, 0]), jnp.array([5, 4, 4, 4, 4, 4, 4, 6])
    )
    values = jnp.array([7.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25])
    state = run.update_priorities(state, indices, values)
    priorities = np.asarray(state.priorities)
    assert priorities[1, 5 % 7] == 7.0
    assert priorities[0, 4 % 7] == 0.5
    assert priorities[0, 6 % 7] == 0.25
    state = run.add(state, chunk(2, 10, 1))
    assert np.all(np.asarray(state.priorities)[:, 10 % 7] == 7.0)


def test_updates_where_false_are_ignored_like_stale_ones():
    run, _, state = ready_state()
    indices = SequenceIndex(
        jnp.array([1, 0, 0, 0, 0, 0, 0, 0]), jnp.array([5, 4, 4, 4, 4, 4, 4, 6])
    )
    values = jnp.array([7.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25])
    where = jnp.array([False, True, True, True, True, True, True, False])
    masked = run.update_priorities(state, indices, values, where)
    only_applied = run.update_priorities(
        state, SequenceIndex(indices.env[1:7], indices.step[1:7]), values[1:7]
    )
    np.testing.assert_array_equal(
        np.asarray(masked.priorities), np.asarray(only_applied.priorities)
    )
    np.testing.assert_array_equal(
        np.asarray(masked.tree.nodes), np.asarray(only_applied.tree.nodes)
    )
    assert float(masked.max_priority) == 1.0, "a masked priority must not raise the maximum"
    unchanged = run.update_priorities(state, indices, values, False)
    np.testing.assert_array_equal(np.asarray(unchanged.tree.nodes), np.asarray(state.tree.nodes))


def test_the_last_of_duplicate_updates_wins():
    run, _, state = ready_state()
    indices = SequenceIndex(jnp.zeros(UPDATE_BATCH, jnp.int32), jnp.full(UPDATE_BATCH, 5))
    values = jnp.arange(1.0, UPDATE_BATCH + 1)[::-1]  # the last is the smallest
    state = run.update_priorities(state, indices, values)
    assert np.asarray(state.priorities)[0, 5] == 1.0
    assert float(state.max_priority) == UPDATE_BATCH


def test_priority_exponent_zero_draws_uniformly_whatever_the_priorities():
    buffer = PrioritisedSequenceBuffer(2, 6, 2, priority_exponent=0.0)

    @jax.jit
    def probabilities_and_weights():
        state = buffer.add(buffer.init(example()), chunk(2, 0, 6))
        indices = SequenceIndex(jnp.array([0, 1]), jnp.array([0, 3]))
        state = buffer.update_priorities(state, indices, jnp.array([100.0, 0.01]))
        return buffer.probabilities(state), buffer.sample(state, jax.random.key(0), 16).weights

    probabilities, weights = probabilities_and_weights()
    np.testing.assert_allclose(np.asarray(probabilities)[:, :5], 0.1, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(probabilities)[:, 5], 0.0)
    np.testing.assert_allclose(np.asarray(weights), 1.0, rtol=1e-6)


def test_the_importance_exponent_can_be_overridden_per_sample():
    run, reference, state = ready_state()
    indices = SequenceIndex(
        jnp.array([0, 0, 1, 1, 0, 1, 0, 1]), jnp.array([3, 4, 5, 6, 7, 3, 5, 7])
    )
    state = run.update_priorities(state, indices, jnp.arange(1.0, 9.0))
    for env, step, value in zip(
        [0, 0, 1, 1, 0, 1, 0, 1], [3, 4, 5, 6, 7, 3, 5, 7], range(1, 9), strict=True
    ):
        reference.update(env, step, float(value))
    for beta in (0.0, 1.0):
        sample = run.sample(state, jax.random.key(1), SAMPLE_BATCH, jnp.float32(beta))
        np.testing.assert_allclose(
            np.asarray(sample.weights), expected_weights(sample, reference, beta), rtol=1e-4
        )


def test_a_fixed_key_gives_the_same_prioritised_sample():
    run, _, state = ready_state()
    first = run.sample(state, jax.random.key(7), SAMPLE_BATCH)
    second = run.sample(state, jax.random.key(7), SAMPLE_BATCH)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_vmap_over_seeds_keeps_each_seed_s_priorities_apart():
    buffer = PrioritisedSequenceBuffer(1, 4, 1)

    def run(key, priority):
        state = buffer.init(example())
        state = buffer.add(state, chunk(1, 0, 4))
        sample = buffer.sample(state, key, 2)
        return buffer.update_priorities(state, sample.indices, jnp.full(2, priority))

    states = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 2), jnp.array([3.0, 9.0]))
    np.testing.assert_array_equal(np.asarray(states.max_priority), [3.0, 9.0])


def test_sampling_when_every_priority_is_zero_is_refused_outside_jit():
    run, _, state = ready_state()
    for step in range(3, 8):
        indices = SequenceIndex(jnp.arange(UPDATE_BATCH) % 2, jnp.full(UPDATE_BATCH, step))
        state = run.update_priorities(state, indices, jnp.zeros(UPDATE_BATCH))
    with pytest.raises(ValueError, match="every valid sequence start has priority zero"):
        run.buffer.sample(state, jax.random.key(0), 2)
    np.testing.assert_array_equal(np.asarray(run.sample(state, jax.random.key(0), 8).weights), 0)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (
            jnp.array([1.0, -1.0]),
            InvalidPriorityError,
            "must be finite and >= 0; got 1 negative among 2 priorities.*absolute TD error",
        ),
        (
            jnp.array([jnp.nan, jnp.inf]),
            InvalidPriorityError,
            "got 1 NaN, 1 infinite among 2 priorities.*NaN or infinite TD error.*diverging",
        ),
        (jnp.array([1.0, 2.0, 3.0]), ValueError, r"priorities \(3,\) must match indices"),
    ],
)
def test_bad_priorities_are_refused_with_the_reason(values, error, message):
    run, _, state = ready_state()
    indices = SequenceIndex(jnp.array([0, 1]), jnp.array([4, 5]))
    with pytest.raises(error, match=message):
        run.buffer.update_priorities(state, indices, values)


# Under jit the host raises InvalidPriorityError and JAX hands it on wrapped in
# its own runtime error, so these tests match the message, not the type.
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (jnp.nan, "got 1 NaN among 8 priorities.*NaN or infinite TD error"),
        (jnp.inf, "got 1 infinite among 8 priorities.*NaN or infinite TD error"),
        (-jnp.inf, "got 1 infinite among 8 priorities"),
        (-0.5, "got 1 negative among 8 priorities.*absolute TD error was not taken"),
    ],
)
def test_a_bad_priority_under_jit_raises_before_anything_reads_the_state(bad, message):
    run, _, state = ready_state()
    indices = SequenceIndex(jnp.arange(UPDATE_BATCH) % 2, jnp.full(UPDATE_BATCH, 5))
    values = jnp.ones(UPDATE_BATCH).at[3].set(bad)

    @jax.jit
    def update_then_sample(state, values):
        # Only a later draw is returned, as in an agent's learning loop.
        state = run.buffer.update_priorities(state, indices, values)
        return run.buffer.sample(state, jax.random.key(0), SAMPLE_BATCH).weights

    with pytest.raises(Exception, match=message):
        jax.block_until_ready(update_then_sample(state, values))
    weights = update_then_sample(state, jnp.ones(UPDATE_BATCH))
    assert np.all(np.isfinite(np.asarray(weights)))


@pytest.fixture
def host_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each host callback that the checks of functions traced from now on run."""
    calls: list[str] = []
    real_io_callback = host_callbacks.io_callback

    def counting_io_callback(callback, *args, **kwargs):
        def counted(*values):
            calls.append(callback.__name__)
            return callback(*values)

        return real_io_callback(counted, *args, **kwargs)

    monkeypatch.setattr(host_callbacks, "io_callback", counting_io_callback)
    return calls


def test_finite_priorities_under_jit_call_the_host_only_when_one_is_bad(host_calls):
    run, _, state = ready_state()
    indices = SequenceIndex(jnp.arange(UPDATE_BATCH) % 2, jnp.full(UPDATE_BATCH, 5))
    # A new function, so it is traced here, with the counter.
    update = jax.jit(lambda *args: run.buffer.update_priorities(*args))
    jax.block_until_ready(update(state, indices, jnp.full(UPDATE_BATCH, 2.0)))
    assert host_calls == []
    with pytest.raises(Exception, match="got 1 NaN among 8 priorities"):
        jax.block_until_ready(update(state, indices, jnp.ones(UPDATE_BATCH).at[0].set(jnp.nan)))
    assert len(host_calls) == 1


def test_vmap_over_seeds_checks_every_seed_with_one_host_call_only_when_bad(host_calls):
    buffer = PrioritisedSequenceBuffer(1, 4, 1)

    def run(key, priorities):
        state = buffer.add(buffer.init(example()), chunk(1, 0, 4))
        sample = buffer.sample(state, key, 2)
        return buffer.update_priorities(state, sample.indices, priorities)

    seeds = jax.jit(jax.vmap(run))
    keys = jax.random.split(jax.random.key(0), 2)
    states = seeds(keys, jnp.array([[3.0, 3.0], [9.0, 9.0]]))
    np.testing.assert_array_equal(np.asarray(states.max_priority), [3.0, 9.0])
    assert host_calls == [], "finite priorities must not call the host"
    with pytest.raises(Exception, match=r"got 1 NaN among 4 priorities"):
        jax.block_until_ready(seeds(keys, jnp.array([[3.0, 3.0], [9.0, jnp.nan]])))
    assert len(host_calls) == 1, "the seeds' checks are folded into one host call"


def _update_then_sample(run, state):
    """The priorities of a first draw updated, then a second draw, through a fresh trace."""
    first = run.sample(state, jax.random.key(3), SAMPLE_BATCH)
    values = jnp.array([0.5, 2.0, 0.0, 1.25, 3.0, 0.75, 0.125, 6.0])
    update = jax.jit(lambda *args: run.buffer.update_priorities(*args))
    state = update(state, first.indices, values)
    return state, run.sample(state, jax.random.key(4), SAMPLE_BATCH)


def test_finite_priorities_give_the_same_state_and_draws_as_without_the_check(monkeypatch):
    run, _, state = ready_state()
    checked_state, checked = _update_then_sample(run, state)
    # Values pinned from the buffer as it was before update_priorities checked its input
    # (jax 0.9.2; the weights to float32 rounding, which other JAX versions may differ in).
    np.testing.assert_array_equal(
        np.asarray(checked_state.priorities),
        [[0.5, 1.0, 1.0, 0.125, 3.0, 6.0, 1.0], [0.75, 1.0, 1.0, 0.0, 1.0, 1.0, 1.25]],
    )
    assert float(checked_state.max_priority) == 6.0
    np.testing.assert_allclose(np.asarray(sum_tree.total(checked_state.tree)), 11.498308, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(checked.indices.env), [1, 1, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(checked.indices.step), [5, 4, 4, 6, 5, 6, 4, 5])
    pinned = np.array([1.0, 1.0, 0.68078125, 1.0, 0.5341301, 1.0, 0.68078125, 1.0], np.float32)
    np.testing.assert_allclose(np.asarray(checked.weights), pinned, rtol=1e-6)
    # The check must not change a bit of the result: the same update without it.
    monkeypatch.setattr(
        prioritised_sequence_buffer, "raise_if", lambda *args, **kwargs: jnp.zeros((), jnp.int32)
    )
    unchecked_state, unchecked = _update_then_sample(run, state)
    for checked_leaf, unchecked_leaf in zip(
        jax.tree.leaves((checked_state, checked)),
        jax.tree.leaves((unchecked_state, unchecked)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(checked_leaf), np.asarray(unchecked_leaf))


def test_refused_priorities_never_reach_the_state_even_if_the_check_is_bypassed(monkeypatch):
    # The running maximum is only ever raised by applied, finite priorities: a
    # NaN maximum would be written to every new step and never be drawn again.
    monkeypatch.setattr(
        prioritised_sequence_buffer,
        "raise_if",
        lambda *args, **kwargs: jnp.zeros((), jnp.int32),
        raising=False,  # so that on a buffer without the check this fails on the state
    )
    run, _, state = ready_state()
    # A new function, so it is traced here, without the check.
    update = jax.jit(lambda *args: run.buffer.update_priorities(*args))
    indices = SequenceIndex(jnp.array([0, 0, 1, 1]), jnp.array([4, 5, 4, 5]))
    updated = update(state, indices, jnp.array([jnp.nan, jnp.inf, -1.0, 2.0]))
    expected = np.asarray(state.priorities).copy()
    expected[1, 5] = 2.0
    np.testing.assert_array_equal(np.asarray(updated.priorities), expected)
    assert float(updated.max_priority) == 2.0
    assert np.all(np.isfinite(np.asarray(updated.tree.nodes)))


def test_a_hidden_cpu_backend_is_named_when_tracing_the_priority_check(monkeypatch):
    monkeypatch.setattr(host_callbacks, "_cpu_backend_available", lambda: False)
    run, _, state = ready_state()
    indices = SequenceIndex(jnp.array([0, 1]), jnp.array([4, 5]))
    with pytest.raises(
        HostBackendUnavailableError, match="update_priorities's check of priorities"
    ):
        jax.jit(lambda *args: run.buffer.update_priorities(*args))(state, indices, jnp.ones(2))


def test_update_priorities_needs_the_sequence_index_from_sample():
    run, _, state = ready_state()
    with pytest.raises(TypeError, match=r"expects the SequenceIndex from sample\(...\).indices"):
        run.buffer.update_priorities(state, jnp.array([3, 4]), jnp.array([1.0, 1.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"priority_exponent": -0.1}, "priority_exponent must be >= 0"),
        ({"importance_sampling_exponent": 1.5}, r"must lie in \[0, 1\]"),
    ],
)
def test_bad_exponents_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrioritisedSequenceBuffer(num_envs=1, capacity=4, sequence_length=2, **kwargs)
