"""``make("namespace::id")``: find a backend through entry points and build an env.

Backends register a :class:`Namespace` under the entry-point group
``memorax.envs``. Core imports no backend: a namespace module is imported
only when its name is asked for, and the backend library itself only when an
env is made.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from memorax.envs.environment import Environment

__all__ = [
    "BackendNotInstalledError",
    "EnvironmentKwargsError",
    "Namespace",
    "UnknownEnvironmentError",
    "UnknownNamespaceError",
    "make",
    "registered_namespaces",
    "unexpected_kwargs_error",
]

ENTRY_POINT_GROUP = "memorax.envs"

# First-party namespaces, so that a user who has not installed the package
# that provides one still gets the exact install command.
KNOWN_BACKENDS = {
    "gymnax": ("memorax-envs-jax", "gymnax"),
    "craftax": ("memorax-envs-jax", "craftax"),
    "navix": ("memorax-envs-jax", "navix"),
    "xminigrid": ("memorax-envs-jax", "xminigrid"),
    "gymnasium": ("memorax-envs-callback", "gymnasium"),
    "ale": ("memorax-envs-callback", "ale"),
    "pufferlib": ("memorax-envs-callback", "pufferlib"),
}


class UnknownNamespaceError(ValueError):
    """No backend provides the requested namespace."""


class BackendNotInstalledError(ImportError):
    """The namespace is known but its package or extra is not installed."""


class UnknownEnvironmentError(ValueError):
    """The namespace exists but has no environment with that id."""


class EnvironmentKwargsError(TypeError):
    """``make`` got keyword arguments the backend does not accept."""


@dataclass(frozen=True)
class Namespace:
    """A backend's registration: how to list and build its environments.

    Attributes:
        name: the part before ``::``.
        factory: ``factory(env_id, num_envs, **kwargs) -> (env, env_params)``.
            Import the backend library inside it, not at module import.
        env_ids: returns the ids this namespace knows (may import the backend).
        requires: import names of the libraries the backend needs; checked
            before ``factory`` runs so a missing extra gives an install hint.
        install: the pip command that installs what is missing.
        open_ended: when True, ids not listed by ``env_ids`` are still passed
            to ``factory`` (for backends whose ids are open, e.g. a user's
            registered gymnasium env).
        contract_ids: the ids the shared contract suite runs for this backend.
    """

    name: str
    factory: Callable[..., tuple[Environment, Any]]
    env_ids: Callable[[], Sequence[str]]
    requires: tuple[str, ...]
    install: str
    open_ended: bool = False
    contract_ids: tuple[str, ...] = ()

    def missing_requirements(self) -> list[str]:
        """Import names of required libraries that are not installed."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]


def install_command(distribution: str, extra: str) -> str:
    """The pip command that installs ``distribution`` with ``extra``, from the package
    index and from a clone of the Memorax repository (the packages are not published yet)."""
    return (
        f'pip install "{distribution}[{extra}]"  (from a clone of the repository, at its '
        f'root: pip install "./packages/{distribution}[{extra}]")'
    )


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def registered_namespaces() -> list[str]:
    """Names of all namespaces installed through the ``memorax.envs`` entry points."""
    return sorted(_entry_points())


@cache
def get_namespace(name: str) -> Namespace:
    """Loads the :class:`Namespace` registered under ``name``.

    Raises:
        UnknownNamespaceError: nothing registers ``name`` and it is not a
            first-party backend.
        BackendNotInstalledError: ``name`` is a first-party backend whose
            package is not installed.
    """
    points = _entry_points()
    if name not in points:
        if name in KNOWN_BACKENDS:
            distribution, extra = KNOWN_BACKENDS[name]
            raise BackendNotInstalledError(
                f"The '{name}' environments come from the {distribution} package, which is "
                f"not installed. Install it with:\n    {install_command(distribution, extra)}"
            )
        known = sorted(set(points) | set(KNOWN_BACKENDS))
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNamespaceError(
            f"Unknown environment namespace '{name}'.{suggestion} "
            f"Known namespaces: {', '.join(known)}. "
            f"Installed: {', '.join(sorted(points)) or 'none'}."
        )
    namespace = points[name].load()
    if not isinstance(namespace, Namespace):
        raise TypeError(
            f"Entry point '{name}' in group '{ENTRY_POINT_GROUP}' must point to a "
            f"memorax.envs.Namespace, got {type(namespace).__name__}."
        )
    return namespace


def split_env_id(full_id: str) -> tuple[str, str]:
    """Splits ``"namespace::id"`` into its parts, with a clear error if malformed."""
    if not isinstance(full_id, str) or full_id.count("::") != 1:
        raise ValueError(
            f"Environment ids look like 'namespace::id', e.g. 'gymnax::CartPole-v1'; "
            f"got {full_id!r}."
        )
    namespace, env_id = full_id.split("::")
    if not namespace or not env_id:
        raise ValueError(f"Both parts of 'namespace::id' must be non-empty; got {full_id!r}.")
    return namespace, env_id


def make(full_id: str, num_envs: int = 1, **kwargs: Any) -> tuple[Environment, Any]:
    """Builds a batched environment from ``"namespace::id"``.

    Args:
        full_id: e.g. ``"gymnax::CartPole-v1"``, ``"navix::Navix-Empty-5x5-v0"``.
        num_envs: copies stepped together; every returned array has this
            leading axis.
        **kwargs: passed to the backend (env constructor options).

    Returns:
        ``(env, env_params)``; ``env_params`` is ``None`` for backends without
        params (callback backends).

    Raises:
        UnknownNamespaceError: no installed backend provides the namespace.
        BackendNotInstalledError: the backend's package or extra is not installed.
        UnknownEnvironmentError: the namespace has no such id.
        EnvironmentKwargsError: the backend does not accept a keyword argument.
        ValueError: a malformed ``"namespace::id"`` or ``num_envs``.

    Each message names the fix.
    """
    namespace_name, env_id = split_env_id(full_id)
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"make({full_id!r}): num_envs must be a positive int, got {num_envs!r}.")
    namespace = get_namespace(namespace_name)
    missing = namespace.missing_requirements()
    if missing:
        raise BackendNotInstalledError(
            f"make({full_id!r}) needs {', '.join(missing)}, which is not installed. "
            f"Install it with:\n    {namespace.install}"
        )
    known_ids = list(namespace.env_ids())
    if env_id not in known_ids and not namespace.open_ended:
        close = difflib.get_close_matches(env_id, known_ids, n=3)
        suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known_ids[:40]) + (" ..." if len(known_ids) > 40 else "")
        raise UnknownEnvironmentError(
            f"Unknown environment id {env_id!r} in namespace '{namespace_name}'.{suggestion} "
            f"Available: {listing}"
        )
    _check_kwargs(namespace, full_id, kwargs)
    return namespace.factory(env_id, num_envs, **kwargs)


def _check_kwargs(namespace: Namespace, full_id: str, kwargs: dict[str, Any]) -> None:
    signature = inspect.signature(namespace.factory)
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = [
        p.name for p in list(parameters)[2:] if p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise unexpected_kwargs_error(
            full_id,
            unknown,
            accepted,
            f"The '{namespace.name}' backend accepts: {', '.join(accepted) or 'none'}.",
        )


def unexpected_kwargs_error(
    full_id: str, unknown: Sequence[str], accepted: Sequence[str], listing: str
) -> EnvironmentKwargsError:
    """The error for ``make`` kwargs a backend does not accept, with a suggestion per name.

    Backends that route kwargs themselves use it so every such error reads alike.

    Args:
        full_id: ``"namespace::id"``.
        unknown: the names that were not accepted.
        accepted: every accepted name (suggestions are drawn from them).
        listing: a sentence that lists what is accepted.
    """
    hints = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, list(accepted), n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return EnvironmentKwargsError(
        f"make({full_id!r}) got unexpected keyword argument(s) {', '.join(hints)}. {listing}"
    )
