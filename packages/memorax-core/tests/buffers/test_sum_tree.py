"""Property tests of the sum-tree against plain numpy."""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memorax.buffers import sum_tree

LEAF_COUNTS = (1, 5, 8, 13)
WRITES = 6  # entries per set_masses call; fixed so each leaf count compiles once
TARGETS = 16
SETTINGS = settings(max_examples=25, deadline=None)


@cache
def compiled(num_leaves: int):
    """Jitted (set_masses, find_prefix) for one tree size."""
    del num_leaves  # part of the cache key only: the tree's shape is static
    return jax.jit(sum_tree.set_masses), jax.jit(sum_tree.find_prefix)


masses = st.one_of(st.just(0.0), st.floats(0.0, 100.0, width=32))


@st.composite
def writes(draw, num_leaves: int):
    """A list of ``set_masses`` calls: (indices, masses, mask), duplicates likely."""
    calls = []
    for _ in range(draw(st.integers(1, 4))):
        indices = draw(st.lists(st.integers(0, num_leaves - 1), min_size=WRITES, max_size=WRITES))
        values = draw(st.lists(masses, min_size=WRITES, max_size=WRITES))
        mask = draw(st.lists(st.booleans(), min_size=WRITES, max_size=WRITES))
        calls.append((indices, values, mask))
    return calls


def apply_reference(num_leaves: int, calls) -> np.ndarray:
    expected = np.zeros(num_leaves, np.float32)
    for indices, values, mask in calls:
        for index, value, keep in zip(indices, values, mask, strict=True):
            if keep:
                # In order, so the last occurrence wins; subnormal masses count as zero.
                expected[index] = value if value >= np.finfo(np.float32).tiny else 0.0
    return expected


def build(num_leaves: int, calls) -> sum_tree.SumTree:
    set_masses, _ = compiled(num_leaves)
    tree = sum_tree.init(num_leaves)
    for indices, values, mask in calls:
        tree = set_masses(tree, jnp.array(indices), jnp.array(values), jnp.array(mask))
    return tree


@st.composite
def tree_cases(draw):
    num_leaves = draw(st.sampled_from(LEAF_COUNTS))
    return num_leaves, draw(writes(num_leaves))


@SETTINGS
@given(tree_cases())
def test_leaves_hold_the_last_write_and_every_node_is_the_sum_of_its_children(case):
    num_leaves, calls = case
    tree = build(num_leaves, calls)
    nodes = np.asarray(tree.nodes)
    padded = tree.num_padded_leaves
    np.testing.assert_array_equal(
        np.asarray(sum_tree.leaves(tree)), apply_reference(num_leaves, calls)
    )
    assert np.all(nodes[padded + num_leaves :] == 0), "padding leaves must stay empty"
    inner = np.arange(1, padded)
    np.testing.assert_array_equal(nodes[inner], nodes[2 * inner] + nodes[2 * inner + 1])
    expected_total = apply_reference(num_leaves, calls).astype(np.float64).sum()
    np.testing.assert_allclose(float(sum_tree.total(tree)), expected_total, rtol=1e-6)


@SETTINGS
@given(tree_cases(), st.lists(st.floats(0.0, 1.0), min_size=TARGETS, max_size=TARGETS))
def test_find_prefix_returns_the_leaf_whose_interval_holds_the_target(case, fractions):
    num_leaves, calls = case
    tree = build(num_leaves, calls)
    leaves = np.asarray(sum_tree.leaves(tree)).astype(np.float64)
    total = float(sum_tree.total(tree))
    if total == 0:
        return  # nothing to find; covered by the zero-mass tests below
    targets = np.asarray(fractions, np.float32) * np.float32(total)
    found = np.asarray(compiled(num_leaves)[1](tree, jnp.asarray(targets)))
    cumulative = np.concatenate([[0.0], np.cumsum(leaves)])
    tolerance = 1e-5 * total
    for target, leaf in zip(targets, found, strict=True):
        assert 0 <= leaf < num_leaves
        assert leaves[leaf] > 0, f"target {target} found leaf {leaf} with zero mass"
        assert cumulative[leaf] - tolerance <= target <= cumulative[leaf + 1] + tolerance


def test_targets_on_an_interval_boundary_go_to_the_next_positive_leaf():
    # Integer masses make every prefix sum exact in float32.
    masses = np.array([2.0, 0.0, 3.0, 0.0, 0.0, 1.0, 4.0], np.float32)
    tree = build(7, [(list(range(7)), list(masses), [True] * 7)])
    _, find = compiled(7)
    targets = jnp.array([0.0, 1.999, 2.0, 4.999, 5.0, 6.0, 9.999, 10.0, 11.0])
    np.testing.assert_array_equal(np.asarray(find(tree, targets)), [0, 0, 2, 2, 5, 6, 6, 6, 6])


def test_find_prefix_never_returns_a_zero_mass_leaf_even_at_the_total():
    tree = build(13, [([3, 9, 4, 4, 0, 0], [5.0, 0.5, 7.0, 0.0, 1.0, 0.0], [True] * 6)])
    total = float(sum_tree.total(tree))
    targets = jnp.array([total, np.nextafter(np.float32(total), np.float32(np.inf)), 2 * total])
    found = np.asarray(compiled(13)[1](tree, targets))
    np.testing.assert_array_equal(found, [9, 9, 9])


def test_init_rejects_an_empty_tree():
    with pytest.raises(ValueError, match="at least one leaf"):
        sum_tree.init(0)
