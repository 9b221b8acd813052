"""A sum-tree over non-negative masses: batched set, total and prefix-sum search.

The tree is one flat array ``nodes: [2 * P]`` with ``P`` the number of leaves
rounded up to a power of two. Node ``1`` is the root, node ``i`` has children
``2i`` and ``2i + 1``, and leaf ``j`` is node ``P + j``; node ``0`` is unused.
Padding leaves hold zero mass, so they are never found.

Every inner node is recomputed from its two children after a write (never
updated by adding a delta), so the tree does not drift in floating point
however many writes it sees: ``nodes[i] == nodes[2i] + nodes[2i + 1]`` holds
exactly after every :func:`set_masses`.

The search only descends into subtrees with positive mass, so
:func:`find_prefix` returns a leaf with positive mass for every target,
including targets at or past the total that rounding can produce; a leaf of
zero mass is never returned while the total is positive.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class SumTree:
    """Array-based sum-tree.

    Attributes:
        nodes: ``[2 * num_padded_leaves]`` float32; see the module docstring.
        num_leaves: number of usable leaves (static).
    """

    nodes: jax.Array
    num_leaves: int = struct.field(pytree_node=False)

    @property
    def num_padded_leaves(self) -> int:
        """Leaves rounded up to a power of two (static)."""
        return self.nodes.shape[-1] // 2

    @property
    def depth(self) -> int:
        """Number of edges from the root to a leaf (static)."""
        return self.num_padded_leaves.bit_length() - 1


def _padded(num_leaves: int) -> int:
    return 1 << max(0, (num_leaves - 1).bit_length())


def init(num_leaves: int) -> SumTree:
    """A tree of ``num_leaves`` leaves, all with zero mass."""
    if num_leaves < 1:
        raise ValueError(f"A sum-tree needs at least one leaf; got num_leaves={num_leaves}.")
    return SumTree(jnp.zeros(2 * _padded(num_leaves), jnp.float32), num_leaves)


def total(tree: SumTree) -> jax.Array:
    """The sum of all leaf masses (scalar)."""
    return tree.nodes[1]


def leaves(tree: SumTree) -> jax.Array:
    """Leaf masses ``[num_leaves]``."""
    p = tree.num_padded_leaves
    return tree.nodes[p : p + tree.num_leaves]


def last_occurrence(indices: jax.Array) -> jax.Array:
    """``[n]`` bool: True where no later entry of ``indices`` has the same value."""
    n = indices.shape[0]
    same = indices[:, None] == indices[None, :]
    later = jnp.arange(n)[None, :] > jnp.arange(n)[:, None]
    return ~jnp.any(same & later, axis=1)


def set_masses(
    tree: SumTree, indices: jax.Array, masses: jax.Array, mask: jax.Array | None = None
) -> SumTree:
    """Set leaf ``indices[k]`` to ``masses[k]`` and refresh their ancestors.

    Args:
        tree: the tree.
        indices: ``[n]`` int leaf indices in ``[0, num_leaves)``.
        masses: ``[n]`` non-negative float masses; subnormal ones (below
            ``finfo(float32).tiny``) are stored as zero.
        mask: optional ``[n]`` bool; entries where it is False are not written.

    Where an index appears more than once, its last (unmasked) occurrence wins,
    so the result does not depend on XLA's scatter order.
    """
    indices = jnp.asarray(indices, jnp.int32).reshape(-1)
    masses = jnp.asarray(masses, jnp.float32).reshape(-1)
    # XLA flushes subnormal sums to zero; storing subnormal masses as zero
    # keeps "a node is positive iff some leaf below it is" exact.
    masses = jnp.where(masses >= jnp.finfo(jnp.float32).tiny, masses, 0.0)
    keep = jnp.ones(indices.shape, bool) if mask is None else jnp.asarray(mask, bool).reshape(-1)
    # Masked entries are moved to an index that cannot collide with a real one
    # before the duplicate check, then dropped by the out-of-bounds scatter.
    out_of_bounds = tree.nodes.shape[0]
    indices = jnp.where(keep, indices, -1 - jnp.arange(indices.shape[0]))
    keep = keep & last_occurrence(indices)
    last_inner = tree.num_padded_leaves - 1
    node = jnp.where(keep, indices + tree.num_padded_leaves, out_of_bounds)
    nodes = tree.nodes.at[node].set(masses, mode="drop")
    for _ in range(tree.depth):
        node = jnp.where(keep, node // 2, out_of_bounds)
        # Clamped reads for dropped entries; their writes are dropped anyway.
        left = 2 * jnp.minimum(node, last_inner)
        # Duplicated parents all write the same sum, so scatter order is irrelevant.
        nodes = nodes.at[node].set(nodes[left] + nodes[left + 1], mode="drop")
    return dataclasses.replace(tree, nodes=nodes)


def find_prefix(tree: SumTree, targets: jax.Array) -> jax.Array:
    """For each target ``u``, the leaf ``j`` with ``sum(m[:j]) <= u < sum(m[:j + 1])``.

    Args:
        tree: the tree; its total must be positive (otherwise the result is
            an arbitrary leaf, which callers must treat as meaningless).
        targets: ``[n]`` floats, normally in ``[0, total)``.

    Returns:
        ``[n]`` int32 leaf indices, each with positive mass when the total is.
    """
    targets = jnp.asarray(targets, jnp.float32)
    node = jnp.ones(targets.shape, jnp.int32)
    for _ in range(tree.depth):
        left = tree.nodes[2 * node]
        right = tree.nodes[2 * node + 1]
        go_right = ((targets >= left) & (right > 0)) | (left <= 0)
        targets = jnp.where(go_right, targets - left, targets)
        node = 2 * node + go_right.astype(jnp.int32)
    return jnp.minimum(node - tree.num_padded_leaves, tree.num_leaves - 1)
