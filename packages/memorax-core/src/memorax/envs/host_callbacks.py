"""Host callbacks: JAX's CPU backend they need, and checks that raise from the host.

Memorax calls back into Python from jitted code in three places: the range
check of discrete actions and the check of replay priorities (both only when
bad input is present, through :func:`raise_if`), and every step of a callback
environment. JAX places a callback's operands on a CPU device, so a process
started with ``JAX_PLATFORMS=cuda`` (CPU hidden) fails deep inside XLA at run
time. :func:`require_host_backend` says so at trace time instead, with the fix.

An exception raised in a callback reaches the caller as JAX's
``JaxRuntimeError`` with the original only in its message. A callback that
records its exception with :func:`host_error` lets :func:`surface_host_errors`
re-raise it as itself, so ``except StaleEnvironmentStateError`` works.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

__all__ = [
    "HostBackendUnavailableError",
    "host_error",
    "raise_if",
    "require_host_backend",
    "surface_host_errors",
]

# Exceptions raised in host callbacks and not yet re-raised, newest last (a few at most:
# the first one stops the program that raised it).
_recorded_errors: list[Exception] = []
_recorded_lock = threading.Lock()


def host_error(error: Exception, *, own_traceback: bool = False) -> Exception:
    """Records ``error``, about to be raised in a host callback, and returns it
    (``raise host_error(SomeError(...))``), so that :func:`surface_host_errors` can
    re-raise it as its own type instead of JAX's ``JaxRuntimeError``.

    ``own_traceback``: the error reports a failure of user code on the host (an env's
    exception): it is re-raised with its own traceback and cause, JAX's error left out.
    """
    error.__memorax_own_traceback__ = own_traceback  # type: ignore[attr-defined]
    with _recorded_lock:
        _recorded_errors.append(error)
        del _recorded_errors[:-8]
    return error


@contextlib.contextmanager
def surface_host_errors() -> Iterator[None]:
    """Re-raises an error recorded by :func:`host_error` as itself when JAX reports it
    as a ``JaxRuntimeError`` inside this block (the JAX error becomes its ``__cause__``,
    except for errors recorded with ``own_traceback``, which keep theirs).

    Results of jitted calls arrive asynchronously: block on them inside the
    block (``jax.block_until_ready``) for their errors to surface here.
    """
    try:
        yield
    except jax.errors.JaxRuntimeError as runtime_error:
        text = str(runtime_error)
        with _recorded_lock:
            match = next((e for e in reversed(_recorded_errors) if _reported_in(e, text)), None)
            _recorded_errors.clear()
        if match is None:
            raise
        if getattr(match, "__memorax_own_traceback__", False):
            # A host env's failure: its own traceback (and the env's exception it wraps)
            # is what the user needs, not XLA's.
            raise match from match.__cause__
        raise match.with_traceback(None) from runtime_error


def _reported_in(error: Exception, text: str) -> bool:
    """Whether JAX's message ``text`` reports ``error`` (its type and the start of its message)."""
    return type(error).__name__ in text and str(error)[:80] in text


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


def raise_if(
    flag: jax.Array,
    error: type[Exception],
    message: str | Callable[..., str],
    *details: jax.Array,
    purpose: str,
) -> jax.Array:
    """Raises ``error(message)`` from the host when ``flag`` is True, at no host cost otherwise.

    The flag is tested on the device; only when it is set does a host callback
    run, and it raises. Under ``jit`` the error reaches the caller wrapped by
    JAX (``JaxRuntimeError``), its message included. Under ``jax.vmap`` the
    flags of the whole batch are folded into one (``custom_vmap``): a vmapped
    ``cond`` would otherwise become a ``select`` that calls the host every time.

    Args:
        flag: ``[]`` bool, True when the input is bad.
        error: the exception class raised on the host.
        message: the message, or a function building it on the host from
            ``details`` (numpy arrays, given one leading axis per vmap folded).
        *details: arrays that ``message`` needs, e.g. counts of bad values.
        purpose: what the check guards; names it if the CPU backend is hidden
            (see :func:`require_host_backend`).

    Returns:
        ``[]`` int32 zero. Callers add it to their output: consumers of the
        output then wait for the check, so bad input never reaches them.
    """
    require_host_backend(purpose)

    def host_raise(bad: np.ndarray, *values: np.ndarray) -> np.ndarray:
        if np.any(bad):
            raise host_error(error(message(*values) if callable(message) else message))
        return np.zeros((), np.int32)

    @custom_vmap
    def check(bad: jax.Array, *values: jax.Array) -> jax.Array:
        return jax.lax.cond(
            bad,
            lambda: io_callback(host_raise, jax.ShapeDtypeStruct((), jnp.int32), bad, *values),
            lambda: jnp.zeros((), jnp.int32),
        )

    @check.def_vmap
    def _check_whole_batch(
        axis_size: int, in_batched: list[bool], bad: jax.Array, *values: jax.Array
    ) -> Any:
        # Every detail gets the batch axis, so the message sees the whole batch.
        values = tuple(
            v if batched else jnp.broadcast_to(v, (axis_size, *jnp.shape(v)))
            for v, batched in zip(values, in_batched[1:], strict=True)
        )
        return jnp.broadcast_to(check(jnp.any(bad), *values), (axis_size,)), True

    return check(flag, *details)
