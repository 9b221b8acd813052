"""Routing ``make(..., **kwargs)`` to env params or the env constructor."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Sequence
from typing import Any

from memorax.envs import EnvironmentKwargsError

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
    params_kwargs = {k: v for k, v in kwargs.items() if k in param_names}
    constructor_kwargs = {k: v for k, v in kwargs.items() if k in constructor_names}
    unknown = sorted(set(kwargs) - set(params_kwargs) - set(constructor_kwargs))
    if unknown:
        accepted = param_names + constructor_names
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, accepted, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise EnvironmentKwargsError(
            f"make({full_id!r}) got unexpected keyword argument(s) {', '.join(hints)}. "
            f"Env params: {', '.join(param_names) or 'none'}; "
            f"constructor arguments: {', '.join(constructor_names) or 'none'}."
        )
    return params_kwargs, constructor_kwargs


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
        hints = []
        for name in sorted(unknown):
            close = difflib.get_close_matches(name, accepted, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        listing = "; ".join(
            f"{group}: {', '.join(names) or 'none'}" for group, names in groups.items()
        )
        raise EnvironmentKwargsError(
            f"make({full_id!r}) got unexpected keyword argument(s) {', '.join(hints)}. "
            f"Accepted: {listing}."
        )
    return routed
