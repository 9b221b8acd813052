"""What a backend can do, declared once and checked by the contract suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Declared abilities of an environment backend.

    Attributes:
        transparent_state: the env state is an ordinary pytree holding the
            whole simulation, so it can be copied, stored and stepped twice
            (forked) with independent results. False for callback envs, whose
            state lives in a host process.
        vmap_over_seeds: ``jax.vmap`` over keys of ``reset``/``step`` (and so
            over whole training runs) gives independent environments.
        has_params: ``make`` returns env params that ``reset``/``step`` use;
            when False, ``make`` returns ``None`` and configuration goes to
            ``make(..., **kwargs)``.
        execution: ``"device"`` when the simulation is traced into the jitted
            program, ``"host"`` when it runs in Python through a callback.
    """

    transparent_state: bool
    vmap_over_seeds: bool
    has_params: bool
    execution: Literal["device", "host"]

    def __post_init__(self) -> None:
        if self.execution not in ("device", "host"):
            raise ValueError(
                f"Capabilities.execution must be 'device' or 'host', got {self.execution!r}."
            )


JAX_NATIVE = Capabilities(
    transparent_state=True, vmap_over_seeds=True, has_params=True, execution="device"
)
"""Capabilities of a pure-JAX backend."""

HOST_CALLBACK = Capabilities(
    transparent_state=False, vmap_over_seeds=True, has_params=False, execution="host"
)
"""Capabilities of a CPU environment bridged through host callbacks (each seed of a
``jax.vmap`` steps its own host env)."""
