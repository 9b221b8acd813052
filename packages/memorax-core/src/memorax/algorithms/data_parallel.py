"""Data parallelism over a one-axis device mesh, through ``jax.sharding`` (GSPMD).

An agent's training program stays one ``jax.jit`` function; this module only
says how its arrays are laid out. Arrays whose env axis has length
``num_envs`` (env state, observations, carries, rollouts, minibatches) are
split along that axis over the mesh axis ``"data"``; everything else
(parameters, optimizer states, counters, metrics) is replicated. XLA then
partitions the computation: each device steps and trains on its share of the
env copies, and because every loss is a mean over the global batch, the
gradients it computes are the all-reduced global gradients. The result is the
single-device result up to float reassociation, for the same key and batch.

The constraints are ``jax.lax.with_sharding_constraint`` calls, so they
compose with ``jax.vmap`` over seeds (the seed axis stays unsharded) and
under ``jax.distributed.initialize`` the mesh spans every host's devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DATA_AXIS", "DataParallel", "check_num_devices"]

DATA_AXIS = "data"
"""Name of the mesh axis the env copies are split over."""


def check_num_devices(owner: str, num_envs: int, num_devices: int) -> None:
    """Raise ``ValueError`` unless ``num_devices`` devices can split ``num_envs`` env copies.

    Checks that many devices are visible and that each gets the same number
    of env copies. ``owner`` prefixes the message (e.g. ``"PPO"``).
    """
    visible = jax.device_count()
    if num_devices > visible:
        raise ValueError(
            f"{owner}: num_devices={num_devices} but only {visible} JAX device(s) are visible "
            f"({jax.devices()[0].platform}). Lower num_devices, run on a machine with more "
            "accelerators, call jax.distributed.initialize() first on a multi-host job, or, to "
            "simulate CPU devices, set XLA_FLAGS=--xla_force_host_platform_device_count="
            f"{num_devices} before importing jax."
        )
    if num_envs % num_devices:
        raise ValueError(
            f"{owner}: num_envs={num_envs} env copies cannot be split evenly over "
            f"num_devices={num_devices} devices; choose num_envs a multiple of {num_devices} "
            f"(e.g. {num_envs + num_devices - num_envs % num_devices}) or a num_devices "
            "dividing it."
        )


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """Sharding constraints that split env copies over a one-axis device mesh.

    Attributes:
        mesh: a one-axis :class:`jax.sharding.Mesh` with axis :data:`DATA_AXIS`.
    """

    mesh: Mesh

    @classmethod
    def over_devices(cls, num_devices: int) -> DataParallel:
        """The first ``num_devices`` of ``jax.devices()`` (all hosts' devices) as a mesh."""
        return cls(Mesh(np.asarray(jax.devices()[:num_devices]), (DATA_AXIS,)))

    @property
    def num_devices(self) -> int:
        """Devices in the mesh."""
        return self.mesh.size

    def replicate(self, tree: Any) -> Any:
        """Every leaf of ``tree`` held whole on every device (parameters, counters)."""
        replicated = NamedSharding(self.mesh, PartitionSpec())
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, replicated), tree)

    def put_replicated(self, tree: Any) -> Any:
        """Concrete arrays of ``tree`` copied whole to every device (outside ``jit``)."""
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def split(self, tree: Any, axis: int = 0) -> Any:
        """Leaves of ``tree`` split over the mesh along ``axis``.

        A leaf is split when its ``axis`` has a length divisible by the
        device count (the env axis and minibatches of whole env copies);
        other leaves (scalars in an env state, a minibatch too small to
        split) are replicated, which is correct, only less parallel.
        """

        def constrain(x: Any) -> Any:
            shape = np.shape(x)
            if len(shape) > axis and shape[axis] % self.num_devices == 0:
                spec = PartitionSpec(*([None] * axis), DATA_AXIS)
            else:
                spec = PartitionSpec()
            return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))

        return jax.tree.map(constrain, tree)
