"""The blocked (sliding-window) whole-sequence form of MultiHeadAttention.

Long sequences are attended to in blocks, each block's queries seeing only
their own block and the blocks (or the cache) their window reaches. These
tests pin that form to the step-by-step form with the key/value cache, at
lengths several times the window, with lengths that are not a multiple of
the block, episode starts on block boundaries, blocks shorter than the
window, and the transformer torsos built from it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.networks import MultiHeadAttention, SequenceModel, attention
from memorax.networks.transformer_torsos import gpt2_torso, gtrxl_torso

BATCH, INPUT_FEATURES, FEATURES = 3, 6, 16
ATOL = RTOL = 1e-5


def starts_for(steps: int, context: int) -> np.ndarray:
    """Row 0: starts exactly on block boundaries; row 1: at 0 and mid-block; row 2: none
    (those past the end of a short sequence left out)."""
    starts = np.zeros((BATCH, steps), bool)
    for row, where in ((0, [context, 2 * context]), (1, [0, context + context // 2 + 1])):
        starts[row, [step for step in where if step < steps]] = True
    return starts


def inputs_for(steps: int, seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (BATCH, steps, INPUT_FEATURES))


def setup(model: SequenceModel, steps: int, context: int) -> tuple[Any, jax.Array, Any, Any]:
    """Params, episode starts, and a non-trivial incoming carry left by another sequence."""
    starts = jnp.asarray(starts_for(steps, context))
    initial = model.initialize_carry(BATCH)
    params = jax.jit(model.init)(jax.random.key(1), inputs_for(steps), starts, initial)
    history, _ = jax.jit(model.apply)(
        params, inputs_for(steps, seed=3), jnp.zeros_like(starts), initial
    )
    return params, starts, initial, history


def step_by_step(
    model: SequenceModel, params: Any, inputs: jax.Array, starts: jax.Array, carry: Any
) -> tuple[Any, jax.Array]:
    def body(carry: Any, xs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        x, start = xs
        carry, out = model.apply(params, x[:, None], start[:, None], carry)
        return carry, out[:, 0]

    carry, outputs = jax.jit(
        lambda c, x, s: jax.lax.scan(body, c, (jnp.swapaxes(x, 0, 1), jnp.swapaxes(s, 0, 1)))
    )(carry, inputs, starts)
    return carry, jnp.swapaxes(outputs, 0, 1)


def assert_trees_close(actual: Any, expected: Any) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=ATOL, rtol=RTOL)


def assert_whole_matches_step_by_step(
    model: SequenceModel, params: Any, inputs: jax.Array, starts: jax.Array, history: Any
) -> jax.Array:
    """The whole-sequence call equals feeding it step by step with the carry threaded
    (outputs and final carry); returns the whole-sequence outputs."""
    whole_carry, whole = jax.jit(model.apply)(params, inputs, starts, history)
    step_carry, steps_out = step_by_step(model, params, inputs, starts, history)
    assert_trees_close(steps_out, whole)
    assert_trees_close(step_carry, whole_carry)
    return whole


# (context_length, block_size, steps): default blocks at 3 windows + 5 steps; blocks equal
# to, shorter than (several previous blocks) and longer than the window; a block of 1; a
# window that reaches back more blocks than the sequence has (4 previous, 3 blocks).
CONFIGS = [
    (16, None, 3 * 16 + 5),
    (4, 4, 3 * 4 + 5),
    (5, 2, 3 * 5 + 5),
    (4, 3, 3 * 4 + 5),
    (3, 8, 3 * 8 + 5),
    (2, 1, 3 * 2 + 5),
    (8, 2, 5),
]


# Every configuration with RoPE; ALiBi and no positions on the default and a short block.
POSITIONAL_CONFIGS = [("rope", *config) for config in CONFIGS] + [
    (positional, *CONFIGS[i]) for positional in ("alibi", "none") for i in (0, 2)
]


@pytest.mark.parametrize(("positional", "context", "block", "steps"), POSITIONAL_CONFIGS)
def test_blocked_whole_sequence_matches_step_by_step_with_the_cache(
    positional: str, context: int, block: int | None, steps: int
) -> None:
    model = MultiHeadAttention(
        FEATURES, num_heads=2, context_length=context, positional=positional, block_size=block
    )
    assert model.block_layout(steps) is not None  # the blocked form, not the direct one
    assert model.block_layout(1) is None  # acting attends directly
    params, starts, _, history = setup(model, steps, context)
    inputs = inputs_for(steps)

    whole = assert_whole_matches_step_by_step(model, params, inputs, starts, history)
    assert whole.shape == (BATCH, steps, FEATURES)


@pytest.mark.parametrize(("context", "block", "steps"), [CONFIGS[0], CONFIGS[2], CONFIGS[3]])
def test_blocked_form_matches_attending_to_everything_at_once(
    context: int, block: int | None, steps: int
) -> None:
    blocked = MultiHeadAttention(FEATURES, 2, context, "rope", block_size=block)
    direct = MultiHeadAttention(FEATURES, 2, context, "rope", block_size=10 * steps)
    assert direct.block_layout(steps) is None
    params, starts, _, history = setup(blocked, steps, context)
    inputs = inputs_for(steps)

    def loss(model: MultiHeadAttention) -> Any:
        def value(params: Any) -> jax.Array:
            return jnp.mean(model.apply(params, inputs, starts, history)[1] ** 2)

        return jax.jit(jax.value_and_grad(value))(params)

    # Same parameters: the block size is not part of the checkpoint.
    assert jax.tree.map(jnp.shape, direct.init(jax.random.key(1), inputs, starts, history)) == (
        jax.tree.map(jnp.shape, params)
    )
    assert_trees_close(
        jax.jit(blocked.apply)(params, inputs, starts, history),
        jax.jit(direct.apply)(params, inputs, starts, history),
    )
    assert_trees_close(loss(blocked), loss(direct))


@pytest.mark.parametrize(("context", "block"), [(4, 4), (5, 2), (16, None)])
def test_each_step_sees_exactly_its_window_and_nothing_before_an_episode_start(
    context: int, block: int | None
) -> None:
    steps = 3 * max(context, block or 16) + 5
    model = MultiHeadAttention(FEATURES, 2, context, "alibi", block_size=block)
    assert model.block_layout(steps) is not None
    starts = jnp.zeros((BATCH, steps), bool)
    initial = model.initialize_carry(BATCH)
    inputs = inputs_for(steps)
    params = model.init(jax.random.key(1), inputs, starts, initial)
    run = jax.jit(model.apply)
    _, outputs = run(params, inputs, starts, initial)

    # Perturb one step: exactly it and the next `context` steps change.
    t = steps // 2
    _, changed = run(params, inputs.at[:, t].add(3.0), starts, initial)
    moved = np.abs(np.asarray(changed - outputs)).max(axis=(0, 2)) > 1e-6
    assert not moved[:t].any()
    assert moved[t : t + context + 1].all()
    assert not moved[t + context + 1 :].any()

    # An episode start on a block boundary (and one step after it) cuts the window there.
    for start in (2 * context, 2 * context + 1):
        cut = starts.at[:, start].set(True)
        _, before = run(params, inputs, cut, initial)
        _, after = run(params, inputs.at[:, :start].add(3.0), cut, initial)
        np.testing.assert_allclose(after[:, start:], before[:, start:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("torso", [gpt2_torso, gtrxl_torso])
def test_transformer_torsos_match_step_by_step_over_several_windows(torso: Any) -> None:
    context = 16
    steps = 3 * context + 5
    model = torso(FEATURES, num_layers=2, num_heads=2, context_length=context)
    params, starts, _, history = setup(model, steps, context)
    inputs = inputs_for(steps)

    assert_whole_matches_step_by_step(model, params, inputs, starts, history)


def test_block_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block_size"):
        MultiHeadAttention(8, 2, 4, block_size=0).initialize_carry(1)


@pytest.mark.parametrize("positional", ["rope", "alibi"])
def test_blocks_attended_in_several_groups_match_step_by_step(
    positional: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Context 6 in blocks of 3 (two previous blocks) over 23 steps: 8 blocks of 3 * 2 * 3 * 9
    # logits. Groups of at most 3 blocks make 3 groups of 3, the last padded with a whole
    # block of padding. (A configuration used nowhere else, so no earlier trace is reused.)
    monkeypatch.setattr(attention, "_GROUP_LOGITS", 3 * BATCH * 2 * 3 * 9)
    context, steps = 6, 23
    model = MultiHeadAttention(FEATURES, 2, context, positional, block_size=3)
    direct = MultiHeadAttention(FEATURES, 2, context, positional, block_size=10 * steps)
    assert model.block_layout(steps) == (3, 2, 8)
    params, starts, _, history = setup(model, steps, context)
    inputs = inputs_for(steps)

    assert_whole_matches_step_by_step(model, params, inputs, starts, history)

    def grads(model: MultiHeadAttention) -> Any:
        def loss(params: Any) -> jax.Array:
            return jnp.mean(model.apply(params, inputs, starts, history)[1] ** 2)

        return jax.jit(jax.grad(loss))(params)

    assert_trees_close(grads(model), grads(direct))
