"""The properties every registered sequence model must have.

Parametrised over ``memorax.networks.SEQUENCE_MODELS`` (so a newly registered
model is tested automatically) plus a few configurations that exercise
edge cases the defaults do not reach at these tiny sizes: an attention
window shorter than the sequence (cache eviction) and chunk sizes that do
not divide the sequence (padding, several chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import (
    SEQUENCE_MODELS,
    DeltaNet,
    DeltaProduct,
    GatedDeltaNet,
    LinearAttention,
    Mamba,
    MultiHeadAttention,
    SequenceModel,
)

EDGE_CASES: dict[str, Callable[[int], SequenceModel]] = {
    "attention_rope_short_window": lambda f: MultiHeadAttention(
        f, num_heads=2, context_length=3, positional="rope"
    ),
    "attention_alibi_short_window": lambda f: MultiHeadAttention(
        f, num_heads=2, context_length=3, positional="alibi"
    ),
    "linear_attention_uneven_chunks": lambda f: LinearAttention(f, num_heads=2, chunk_size=5),
    "mamba_uneven_chunks": lambda f: Mamba(f, head_dim=8, chunk_size=5),
    "deltanet_uneven_chunks": lambda f: DeltaNet(f, num_heads=2, chunk_size=5),
    "gated_deltanet_uneven_chunks": lambda f: GatedDeltaNet(f, num_heads=2, chunk_size=5),
    "delta_product_uneven_chunks": lambda f: DeltaProduct(
        f, num_heads=2, householder_steps=3, chunk_size=5
    ),
}
MODELS = {**SEQUENCE_MODELS, **EDGE_CASES}

BATCH, STEPS, INPUT_FEATURES, FEATURES = 3, 12, 6, 16
CHUNK = 4
LONG_STEPS = 32
# Row 0: one episode start mid-sequence. Row 1: starts at 0 and 9. Row 2: none.
START_ROW, START_STEP = 0, 5
STARTS = np.zeros((BATCH, STEPS), bool)
STARTS[START_ROW, START_STEP] = True
STARTS[1, [0, 9]] = True
ATOL = RTOL = 1e-5


@dataclass
class Case:
    name: str
    model: SequenceModel
    params: Any
    inputs: jax.Array
    starts: jax.Array
    initial: Any
    history: Any  # the carry left by a different, reset-free sequence: a non-trivial start
    run: Callable[..., Any]  # jitted (params, inputs, starts, carry) -> (carry, outputs)


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request: pytest.FixtureRequest) -> Case:
    model = MODELS[request.param](FEATURES)
    inputs = jax.random.normal(jax.random.key(0), (BATCH, STEPS, INPUT_FEATURES))
    starts = jnp.asarray(STARTS)
    initial = model.initialize_carry(BATCH)
    params = jax.jit(model.init)(jax.random.key(1), inputs, starts, initial)
    run = jax.jit(model.apply)
    other_inputs = jax.random.normal(jax.random.key(3), inputs.shape)
    history, _ = run(params, other_inputs, jnp.zeros_like(starts), initial)
    return Case(request.param, model, params, inputs, starts, initial, history, run)


def assert_trees_close(actual: Any, expected: Any, atol: float = ATOL) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=RTOL)


def run_in_chunks(case: Case, chunk: int) -> tuple[Any, jax.Array]:
    """Feed the sequence ``chunk`` steps at a time, threading the carry through lax.scan."""

    def body(carry: Any, xs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        inputs, starts = xs
        return case.model.apply(case.params, inputs, starts, carry)

    def split(x: jax.Array) -> jax.Array:
        x = jnp.reshape(x, (BATCH, STEPS // chunk, chunk, *x.shape[2:]))
        return jnp.swapaxes(x, 0, 1)

    @jax.jit
    def run(inputs: jax.Array, starts: jax.Array, carry: Any) -> tuple[Any, jax.Array]:
        carry, outputs = jax.lax.scan(body, carry, (split(inputs), split(starts)))
        outputs = jnp.swapaxes(outputs, 0, 1)
        return carry, jnp.reshape(outputs, (BATCH, STEPS, *outputs.shape[3:]))

    return run(case.inputs, case.starts, case.history)


def test_whole_sequence_matches_step_by_step_with_carry_threaded(case: Case) -> None:
    whole_carry, whole = case.run(case.params, case.inputs, case.starts, case.history)
    step_carry, steps = run_in_chunks(case, 1)
    assert whole.shape == (BATCH, STEPS, whole.shape[-1])
    assert whole.dtype == jnp.float32
    assert_trees_close(steps, whole)
    assert_trees_close(step_carry, whole_carry)


def test_whole_sequence_matches_chunks_with_carry_threaded(case: Case) -> None:
    whole_carry, whole = case.run(case.params, case.inputs, case.starts, case.history)
    chunk_carry, chunks = run_in_chunks(case, CHUNK)
    assert_trees_close(chunks, whole)
    assert_trees_close(chunk_carry, whole_carry)


def test_nothing_before_an_episode_start_reaches_it_or_later_steps(case: Case) -> None:
    _, outputs = case.run(case.params, case.inputs, case.starts, case.initial)
    # A different past: other inputs before the start, and a carry left by another sequence.
    noise = 3.0 * jax.random.normal(jax.random.key(2), case.inputs.shape)
    before_start = jnp.zeros((BATCH, STEPS, 1), bool).at[START_ROW, :START_STEP].set(True)
    changed_inputs = jnp.where(before_start, case.inputs + noise, case.inputs)
    _, changed = case.run(case.params, changed_inputs, case.starts, case.history)

    # The perturbation is visible before the start, so the check below has teeth.
    assert not np.allclose(changed[START_ROW, :START_STEP], outputs[START_ROW, :START_STEP])
    np.testing.assert_allclose(
        changed[START_ROW, START_STEP:], outputs[START_ROW, START_STEP:], atol=1e-6, rtol=0
    )
    # Row 1 starts an episode at step 0: the incoming carry must not matter at all.
    np.testing.assert_allclose(changed[1], outputs[1], atol=1e-6, rtol=0)


def test_gradients_are_finite_through_a_long_sequence_under_jit_and_vmap(case: Case) -> None:
    # Two independent batches under vmap, differentiated through the whole sequence.
    inputs = jax.random.normal(jax.random.key(4), (2, BATCH, LONG_STEPS, INPUT_FEATURES))
    starts = jnp.zeros((2, BATCH, LONG_STEPS), bool).at[:, 0, LONG_STEPS // 2].set(True)

    def loss(params: Any) -> jax.Array:
        def run(inputs: jax.Array, starts: jax.Array) -> jax.Array:
            return case.model.apply(params, inputs, starts, case.initial)[1]

        return jnp.mean(jax.vmap(run)(inputs, starts) ** 2)

    grads = jax.jit(jax.grad(loss))(case.params)
    leaves = jax.tree.leaves(grads)
    assert leaves
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert any(bool(jnp.any(leaf != 0)) for leaf in leaves)


def test_carry_keeps_its_structure_shapes_and_dtypes(case: Case) -> None:
    fresh = MODELS[case.name](FEATURES).initialize_carry(BATCH)  # unbound, no params
    whole_carry, _ = case.run(case.params, case.inputs, case.starts, case.initial)
    step_carry, _ = case.run(case.params, case.inputs[:, :1], case.starts[:, :1], case.initial)

    def signature(tree: Any) -> Any:
        return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)

    assert signature(fresh) == signature(case.initial)
    assert signature(whole_carry) == signature(case.initial)
    assert signature(step_carry) == signature(case.initial)
    for leaf in jax.tree.leaves(case.initial):
        assert leaf.shape[0] == BATCH
