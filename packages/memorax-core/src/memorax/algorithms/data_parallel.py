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

Every agent uses it the same way: its config validates ``num_devices``
(:func:`check_num_devices_field`), its constructor gets a
:class:`DataParallel` or ``None`` (:func:`data_parallel_for`), and its
training code lays out state and batches with :func:`place` and
:func:`split`, which are the identity for ``None``, so the single-device
program is the one without any constraint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

if TYPE_CHECKING:
    from memorax.envs import Environment

__all__ = [
    "DATA_AXIS",
    "DataParallel",
    "check_batch_size_field",
    "check_num_devices",
    "check_num_devices_field",
    "data_parallel_for",
    "place",
    "put_replicated",
    "split",
]

State = TypeVar("State")

DATA_AXIS = "data"
"""Name of the mesh axis the env copies are split over."""


def check_num_devices_field(owner: str, num_envs: int, num_devices: Any) -> None:
    """Raise ``ValueError`` unless a config's ``num_devices`` is ``None`` or a positive int
    dividing ``num_envs``.

    The config-time half of the checks (no device is queried); ``owner``
    prefixes the message (e.g. ``"PQNConfig"``).
    """
    if num_devices is None:
        return
    is_int = isinstance(num_devices, int | np.integer) and not isinstance(num_devices, bool)
    if not (is_int and num_devices >= 1):
        raise ValueError(
            f"{owner}: num_devices must be a positive integer or None, got {num_devices!r}."
        )
    if num_envs % num_devices:
        raise ValueError(
            f"{owner}: num_envs={num_envs} env copies cannot be split evenly over "
            f"num_devices={num_devices} devices; choose num_envs a multiple of "
            "num_devices (or num_devices dividing num_envs)."
        )


def check_batch_size_field(owner: str, batch_size: int, num_devices: int | None) -> None:
    """Raise ``ValueError`` unless ``batch_size`` sampled sequences split evenly over
    ``num_devices`` (replay agents split each sampled batch over the devices).

    ``owner`` prefixes the message (e.g. ``"SACConfig"``); nothing to check for ``None``.
    """
    if num_devices is not None and batch_size % num_devices:
        raise ValueError(
            f"{owner}: batch_size={batch_size} sampled sequences cannot be split evenly over "
            f"num_devices={num_devices} devices; choose batch_size a multiple of num_devices."
        )


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


def place(
    data_parallel: DataParallel | None,
    state: State,
    split_fields: Iterable[str] | Mapping[str, int],
) -> State:
    """``state`` (a dataclass pytree), ``split_fields`` split over the mesh, the rest replicated.

    ``split_fields`` name the fields with an env axis (env state, observation,
    carries, a per-env replay buffer): an iterable of names whose env axis is
    axis 0, or a mapping from name to env axis (e.g. a carry stacked on a
    leading axis of two critic copies has its env axis at 1). A dotted name
    (``"buffer_state.priorities"``) splits one field of a nested dataclass
    and replicates that dataclass's other fields (e.g. a sum tree over every
    env copy's priorities). Everything else (parameters, optimizer states,
    counters, metrics) is held whole on every device. The identity when
    ``data_parallel`` is ``None``.
    """
    if data_parallel is None:
        return state
    axes = (
        dict(split_fields) if isinstance(split_fields, Mapping) else dict.fromkeys(split_fields, 0)
    )
    whole: dict[str, int] = {}
    nested: dict[str, dict[str, int]] = {}
    for name, axis in axes.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = axis
        else:
            whole[head] = axis
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}  # type: ignore[arg-type]
    unknown = (whole.keys() | nested.keys()) - fields.keys()
    if unknown:
        raise ValueError(f"place: {type(state).__name__} has no fields {sorted(unknown)}.")

    mesh_layout = data_parallel  # narrowed to DataParallel inside the closure too

    def lay_out(name: str, value: Any) -> Any:
        if name in whole:
            return mesh_layout.split(value, whole[name])
        if name in nested:
            return place(mesh_layout, value, nested[name])
        return mesh_layout.replicate(value)

    laid_out = {name: lay_out(name, value) for name, value in fields.items()}
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
