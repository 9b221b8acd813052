"""Routing ``make(..., **kwargs)`` to env params or the env constructor."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

from memorax.envs import unexpected_kwargs_error

__all__ = ["route_kwargs", "split_params_kwargs"]


def split_params_kwargs(
    full_id: str, params: Any, env_class: type, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Splits kwargs into param overrides and constructor arguments.

    Raises:
        EnvironmentKwargsError: for a name that is neither, listing both kinds.
    """
    param_names = (
        [f.name for f in dataclasses.fields(params)] if dataclasses.is_dataclass(params) else []
    )
    signature = inspect.signature(env_class)
    constructor_names = [
        name
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    routed = route_kwargs(
        full_id, kwargs, {"env params": param_names, "constructor arguments": constructor_names}
    )
    return routed["env params"], routed["constructor arguments"]


def route_kwargs(
    full_id: str, kwargs: dict[str, Any], groups: dict[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """Sorts kwargs into named groups of accepted names.

    Args:
        full_id: ``"namespace::id"``, shown in the error.
        kwargs: what the user passed to ``make``.
        groups: group name (e.g. ``"env params"``) -> the names it accepts; a
            name listed in several groups goes to the first.

    Returns:
        group name -> the kwargs routed to it (every group present, maybe empty).

    Raises:
        EnvironmentKwargsError: for a name in no group, listing every group.
    """
    routed: dict[str, dict[str, Any]] = {group: {} for group in groups}
    unknown = []
    for name, value in kwargs.items():
        group = next((g for g, names in groups.items() if name in names), None)
        if group is None:
            unknown.append(name)
        else:
            routed[group][name] = value
    if unknown:
        accepted = [name for names in groups.values() for name in names]
        listing = "; ".join(
            f"{group}: {', '.join(names) or 'none'}" for group, names in groups.items()
        )
        raise unexpected_kwargs_error(full_id, unknown, accepted, f"Accepted: {listing}.")
    return routed
