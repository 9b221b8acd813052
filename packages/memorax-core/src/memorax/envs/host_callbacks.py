"""Host callbacks need JAX's CPU backend, also when the program runs on an accelerator.

Memorax calls back into Python from jitted code in two places: the range
check of discrete actions (only when a bad action is present) and every
step of a callback environment. JAX places a callback's operands on a CPU
device, so a process started with ``JAX_PLATFORMS=cuda`` (CPU hidden) fails
deep inside XLA at run time. :func:`require_host_backend` says so at trace
time instead, with the fix.
"""

from __future__ import annotations

import functools
import os

import jax

__all__ = ["HostBackendUnavailableError", "require_host_backend"]


class HostBackendUnavailableError(RuntimeError):
    """JAX's CPU backend is hidden, so host callbacks cannot run."""


@functools.cache
def _cpu_backend_available() -> bool:
    try:
        jax.devices("cpu")
    except RuntimeError:
        return False
    return True


def require_host_backend(purpose: str) -> None:
    """Raises :class:`HostBackendUnavailableError` if JAX cannot run host callbacks.

    Args:
        purpose: what needs the callback, e.g. ``"gymnasium::CartPole-v1.step"``;
            it starts the message.
    """
    if _cpu_backend_available():
        return
    platforms = os.environ.get("JAX_PLATFORMS", "")
    raise HostBackendUnavailableError(
        f"{purpose} needs a host callback, which needs JAX's CPU backend, but this process "
        f"hides it (JAX_PLATFORMS={platforms!r}, devices: {jax.devices()}). List the CPU after "
        "the accelerator, e.g. JAX_PLATFORMS=cuda,cpu: the accelerator stays the default "
        "device and the CPU only hosts the callbacks. Or leave JAX_PLATFORMS unset."
    )
