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

The agent skeleton (:mod:`memorax.algorithms.agent`) uses it the same way for
every agent: the constructor gets a :class:`DataParallel` or ``None``
(:func:`data_parallel_for`); each state declares its env-axis fields
(:data:`OnEnvAxis`) and is laid out by :func:`place`; rollouts and batches go
through :func:`split`. Both are the identity for ``None``, so the
single-device program is the one without any constraint.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

if TYPE_CHECKING:
    from memorax.envs import Environment

__all__ = [
    "DATA_AXIS",
    "ENV_AXIS",
    "DataParallel",
    "LaidOutByFields",
    "OnEnvAxis",
    "check_num_devices",
    "data_parallel_for",
    "declared_env_axes",
    "place",
    "put_replicated",
    "split",
]

State = TypeVar("State")
T = TypeVar("T")

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


def data_parallel_for(
    owner: str, env: Environment, num_envs: int, num_devices: int | None
) -> DataParallel | None:
    """The agent's layout: ``None`` (one device, no constraints) or a mesh of ``num_devices``.

    Raises ``ValueError`` for a callback env (one host env per process, which
    cannot be split over devices) and unless :func:`check_num_devices` passes.
    """
    if num_devices is None:
        return None
    if env.capabilities.execution == "host":
        raise ValueError(
            f"{owner}: {env.name} is a callback env, one host env per process; it cannot be "
            "split over devices, so config.num_devices must be None. To scale it, run "
            "more env copies (num_envs) or one training process per host."
        )
    check_num_devices(owner, num_envs, num_devices)
    return DataParallel.over_devices(num_devices)


ENV_AXIS = "env_axis"
"""Field metadata key of a nested state's own fields (a replay buffer's experience):
the env axis of the field, as :data:`OnEnvAxis` declares it for an agent's state."""


@dataclasses.dataclass(frozen=True)
class _EnvAxis:
    """The marker :data:`OnEnvAxis` and :data:`LaidOutByFields` put on a field's type."""

    axis: int | str


OnEnvAxis = Annotated[T, _EnvAxis(0)]
"""A state field whose leading axis is the env axis (env state, observation, carries):
split over the devices when training data-parallel, e.g. ``observation: OnEnvAxis[jax.Array]``."""

LaidOutByFields = Annotated[T, _EnvAxis("fields")]
"""A nested state laid out field by field as its own fields declare (a replay buffer, whose
experience is split while its sum tree over every env copy is replicated)."""


@functools.cache
def declared_env_axes(state_class: Any) -> dict[str, int | str]:
    """``{field: env axis}`` of the fields a state class declares with an env axis:
    :data:`OnEnvAxis` and :data:`LaidOutByFields` types, or :data:`ENV_AXIS` metadata."""
    hints = typing.get_type_hints(state_class, include_extras=True)
    axes: dict[str, int | str] = {}
    for field in dataclasses.fields(state_class):
        markers = [
            m for m in getattr(hints.get(field.name), "__metadata__", ()) if isinstance(m, _EnvAxis)
        ]
        if markers:
            axes[field.name] = markers[0].axis
        elif ENV_AXIS in field.metadata:
            axes[field.name] = field.metadata[ENV_AXIS]
    return axes


def place(
    data_parallel: DataParallel | None,
    state: State,
    overrides: Mapping[str, int] | None = None,
) -> State:
    """``state`` (a dataclass pytree) laid out over the mesh as its fields declare.

    A field declared :data:`OnEnvAxis` (env state, observation, carries) is
    split along its env axis; one declared :data:`LaidOutByFields` (a replay
    buffer) is laid out field by field as its own dataclass declares. Every
    other field (parameters, optimizer states, counters, metrics) is held whole
    on every device. ``overrides`` replaces the declared axis of named fields
    (e.g. a carry stacked on a leading axis of two critic copies has its env
    axis at 1). The identity when ``data_parallel`` is ``None``.
    """
    if data_parallel is None:
        return state
    mesh_layout = data_parallel  # narrowed to DataParallel inside the closure too
    axes = {**declared_env_axes(cast(Any, type(state))), **(overrides or {})}

    def lay_out(name: str, value: Any) -> Any:
        axis = axes.get(name)
        if axis is None:
            return mesh_layout.replicate(value)
        if axis == "fields":
            return place(mesh_layout, value)
        return mesh_layout.split(value, int(axis))

    laid_out = {
        field.name: lay_out(field.name, getattr(state, field.name))
        for field in dataclasses.fields(state)  # type: ignore[arg-type]
    }
    return dataclasses.replace(state, **laid_out)  # type: ignore[type-var]


def split(data_parallel: DataParallel | None, tree: Any, axis: int = 0) -> Any:
    """:meth:`DataParallel.split` of ``tree``; the identity when ``data_parallel`` is ``None``."""
    return tree if data_parallel is None else data_parallel.split(tree, axis)


def put_replicated(data_parallel: DataParallel | None, tree: Any) -> Any:
    """:meth:`DataParallel.put_replicated` of ``tree``; the identity for ``None``.

    Agents put the empty metrics they hand to their jitted ``train`` this way,
    laid out as ``train`` returns them, so a second call reuses the program.
    """
    return tree if data_parallel is None else data_parallel.put_replicated(tree)


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
