"""``make`` kwargs checked against the env constructor before any env is built.

gymnasium and PufferLib pass unknown kwargs on to the env's constructor,
which fails with a bare ``TypeError`` from deep inside the library (for
PufferLib, possibly inside a worker process). Checking the constructor's
signature first gives Memorax's usual :class:`EnvironmentKwargsError` with a
suggestion for each misspelt name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from memorax.envs import unexpected_kwargs_error

__all__ = ["check_creator_kwargs", "check_gymnasium_kwargs"]

# gymnasium.make's own keyword arguments, accepted for every id.
_GYMNASIUM_MAKE_KWARGS = ("max_episode_steps", "disable_env_checker", "render_mode")


def check_creator_kwargs(
    full_id: str,
    creator: Callable[..., Any],
    kwargs: Mapping[str, Any],
    also_accepted: Iterable[str] = (),
) -> None:
    """Raises ``EnvironmentKwargsError`` if ``creator`` cannot take every key of ``kwargs``.

    Creators that take ``**kwargs`` or whose signature cannot be read are not
    checked (they get to raise their own error).

    Args:
        full_id: ``"namespace::id"``, for the message.
        creator: the callable the kwargs are passed to.
        kwargs: the user's ``make`` kwargs.
        also_accepted: names consumed before ``creator`` is called.
    """
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):
        return
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return
    accepted = sorted(
        {
            parameter.name
            for parameter in parameters
            if parameter.kind
            in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        }
        | set(also_accepted)
    )
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise unexpected_kwargs_error(
            full_id, unknown, accepted, f"{full_id} accepts: {', '.join(accepted) or 'none'}."
        )


def check_gymnasium_kwargs(full_id: str, env_id: str, kwargs: Mapping[str, Any]) -> None:
    """Checks ``make`` kwargs for gymnasium id ``env_id`` against its registered constructor.

    Accepted: the constructor's parameters, the id's registered kwargs and
    ``gymnasium.make``'s own (``max_episode_steps``, ``disable_env_checker``,
    ``render_mode``). Ids gymnasium does not know are left for gymnasium to
    report.
    """
    import gymnasium
    from gymnasium.envs.registration import load_env_creator

    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error:
        return
    entry_point: Any = spec.entry_point
    if isinstance(entry_point, str):
        try:
            entry_point = load_env_creator(entry_point)
        except (ImportError, AttributeError, gymnasium.error.Error):
            return
    if not callable(entry_point):
        return
    check_creator_kwargs(
        full_id, entry_point, kwargs, also_accepted=(*_GYMNASIUM_MAKE_KWARGS, *spec.kwargs)
    )
