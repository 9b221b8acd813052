"""What one ``memorax train`` run is: settings from defaults, a config file and flags.

Precedence: command-line flags over the ``--config`` file over defaults. The
resolved settings are written to ``RUN_DIR/run.json`` so ``--resume`` can
rebuild the same run.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EVALUATION_DIR",
    "EVALUATION_METRIC",
    "RUN_FILE",
    "RunSettings",
    "SettingsError",
    "load_config_file",
    "parse_field_value",
]

RUN_FILE = "run.json"
# After every chunk each seed's deterministic policy plays one episode per env copy;
# the mean returns go to RUN_DIR/evaluation/metrics.csv (a metrics file's columns are
# fixed by its first row, so they cannot join the training metrics).
EVALUATION_DIR = "evaluation"
EVALUATION_METRIC = "evaluation_return"


class SettingsError(ValueError):
    """A setting is invalid; the message says which and how to fix it."""


@dataclass
class RunSettings:
    """Everything that defines a training run (see ``memorax train --help``)."""

    algo: str = "ppo"
    env: str = "gymnax::CartPole-v1"
    torso: str = "mlp"
    num_steps: int = 500_000
    seeds: int = 2
    seed: int = 0
    out: str | None = None
    loggers: list[str] = field(default_factory=lambda: ["csv"])
    hidden_size: int = 64
    learning_rate: float = 2.5e-4
    checkpoint_every: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_config: dict[str, Any] = field(default_factory=dict)
    # {config field or "learning_rate": values}; every combination is one setting.
    sweep: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The settings as JSON, for ``RUN_DIR/run.json``."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        """Settings saved by :meth:`to_json`."""
        return cls(**json.loads(text))


SETTING_NAMES = {f.name for f in dataclasses.fields(RunSettings)}


def load_config_file(path: Path) -> dict[str, Any]:
    """Reads a TOML (``.toml``) or YAML (``.yaml``/``.yml``) run config, or the
    ``run.json`` a run wrote (JSON).

    Top-level keys are run settings (``env``, ``torso``, ``num_steps``, ...);
    a table named after the algorithm (``[ppo]``) holds its config fields and
    ``[env_kwargs]`` the keyword arguments for ``make``. A ``run.json`` holds
    the same settings with the config fields under ``algo_config``; its
    ``out`` is left out, so the new run gets a directory of its own.
    """
    if not path.is_file():
        raise SettingsError(f"--config {path}: no such file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text()) or {}
        elif suffix == ".json":
            data = _from_run_file(json.loads(path.read_text()))
        else:
            raise SettingsError(f"--config {path}: use a .toml, .yaml, .yml or run.json file.")
    except (tomllib.TOMLDecodeError, ValueError) as error:
        if isinstance(error, SettingsError):
            raise
        raise SettingsError(f"--config {path} is not valid: {error}") from error
    except Exception as error:  # yaml's own error types
        raise SettingsError(f"--config {path} is not valid: {error}") from error
    if not isinstance(data, dict):
        raise SettingsError(f"--config {path}: the top level must be a table of settings.")
    return data


def _from_run_file(data: Any) -> Any:
    """A run's ``run.json`` in the config-file layout (``algo_config`` as the algorithm's
    table, no ``out``)."""
    if not isinstance(data, dict):
        return data
    data = {key: value for key, value in data.items() if key != "out"}
    if "algo_config" in data:
        data[data.get("algo", RunSettings.algo)] = data.pop("algo_config")
    return data


def parse_field_value(config_class: type, name: str, text: str, prefix: str) -> Any:
    """Parses ``text`` as the value of ``config_class``'s field ``name``."""
    hints = typing.get_type_hints(config_class)
    kind = hints[name]
    options = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    if type(None) in typing.get_args(kind) and text.lower() in ("none", "null"):
        return None
    target = options[0]
    try:
        if target is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if target is int:
            return int(text.replace("_", ""))
        if target is float:
            return float(text)
        return target(text)
    except (TypeError, ValueError) as error:
        raise SettingsError(
            f"--{prefix}.{name.replace('_', '-')}: expected {getattr(target, '__name__', target)}, "
            f"got {text!r}."
        ) from error
