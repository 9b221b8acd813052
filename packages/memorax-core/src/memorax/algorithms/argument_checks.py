"""Checks of what a user passes to an agent: clear errors (and warnings) before anything runs.

Every agent validates its frozen ``Config`` in ``__post_init__`` and the
arguments of ``train`` / ``evaluate`` before tracing; these functions say the
same thing the same way for all of them. ``owner`` prefixes each message
(``"SACConfig"``, ``"SAC.train"``) so the user knows where to look.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

__all__ = [
    "check_bools",
    "check_evaluate_arguments",
    "check_optional_positive",
    "check_ranges",
    "check_sequence_fields",
    "is_int",
    "is_number",
    "num_iterations",
]

Rule = tuple[Callable[[Any], bool], float, float | None, str]
"""``(kind, low, high, what)``: ``kind(value)`` and ``low <= value <= high`` (``high``
``None``: unbounded); ``what`` completes "must be ..." in the message."""


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers, False for bools."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for Python and NumPy ints and floats, False for bools."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def check_ranges(
    owner: str, config: Any, rules: Mapping[str, Rule], open_low: Collection[str] = ()
) -> None:
    """Raise ``ValueError`` for the first field of ``config`` that breaks its :data:`Rule`.

    Fields named in ``open_low`` must also be strictly above their ``low``
    (e.g. ``gamma`` in ``(0, 1]``).
    """
    for name, (kind, low, high, what) in rules.items():
        value = getattr(config, name)
        ok = kind(value) and value >= low and (high is None or value <= high)
        if name in open_low:
            ok = ok and value > low
        if not ok:
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}.")


def check_sequence_fields(owner: str, config: Any) -> None:
    """Raise ``ValueError`` unless ``sequence_length`` is ``None`` or a positive int and
    ``burn_in_length`` is ``None`` or a non-negative int (``None``: the agent chooses)."""
    for name, low, what in (("sequence_length", 1, "a positive"),
                            ("burn_in_length", 0, "a non-negative")):  # fmt: skip
        value = getattr(config, name)
        if not (value is None or (is_int(value) and value >= low)):
            raise ValueError(
                f"{owner}: {name} must be {what} integer or None (the agent's default for "
                f"its networks), got {value!r}."
            )


def check_optional_positive(owner: str, config: Any, names: Collection[str]) -> None:
    """Raise ``ValueError`` unless each named field is ``None`` or a positive number."""
    for name in names:
        value = getattr(config, name)
        if not (value is None or (is_number(value) and value > 0)):
            raise ValueError(f"{owner}: {name} must be a positive number or None, got {value!r}.")


def check_bools(owner: str, config: Any, names: Collection[str]) -> None:
    """Raise ``ValueError`` unless each named field is a bool (not 0 / 1)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, bool):
            raise ValueError(f"{owner}: {name} must be a bool, got {value!r}.")


def num_iterations(owner: str, num_steps: Any, per_iteration: int, unit: str = "iteration") -> int:
    """Iterations of ``per_iteration`` env steps that ``num_steps`` env steps make.

    Raises ``ValueError`` unless ``num_steps`` is a Python int of at least one
    iteration; warns when it is not a multiple (the remainder is not run).
    ``owner`` is the method, e.g. ``"SAC.train"``; ``unit`` is what the agent
    calls one iteration in its messages (``"update"`` for PPO and PQN).
    """
    if not is_int(num_steps) or num_steps < per_iteration:
        raise ValueError(
            f"{owner}: num_steps must be a Python int of at least num_envs * "
            f"config.num_steps = {per_iteration} env steps (one {unit}), got {num_steps!r}."
        )
    iterations, remainder = divmod(int(num_steps), per_iteration)
    if remainder:
        warnings.warn(
            f"{owner}: num_steps={num_steps} is not a multiple of num_envs * config.num_steps "
            f"= {per_iteration}; running {iterations} {unit}s = "
            f"{iterations * per_iteration} env steps.",
            stacklevel=3,
        )
    return iterations


def check_evaluate_arguments(owner: str, num_episodes: Any, max_steps: Any) -> None:
    """Raise ``ValueError`` unless both are positive ints (``owner``: e.g. ``"SAC.evaluate"``)."""
    for name, value in (("num_episodes", num_episodes), ("max_steps", max_steps)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}.")
