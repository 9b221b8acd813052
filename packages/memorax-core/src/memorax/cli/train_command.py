"""``memorax train``: options, config file and resume, resolved into run settings."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from memorax.cli.agents import ALGORITHMS, TORSOS
from memorax.cli.run_settings import (
    RUN_FILE,
    SETTING_NAMES,
    RunSettings,
    SettingsError,
    load_config_file,
    parse_field_value,
)

__all__ = ["add_train_command"]

# The exit status of a run that training errors stopped (Python's own for an uncaught error).
TRAINING_FAILED = 1
LOGGERS = ("console", "csv", "jsonl", "tensorboard", "wandb")
EXAMPLES = """\
The help lists the options of one algorithm (--algo, default ppo):
`memorax train --algo sac --help` lists SAC's.

examples:
  memorax train                                   PPO on gymnax::CartPole-v1, 2 seeds
  memorax train --env gymnax::MemoryChain-bsuite --env-arg memory_length=10 --torso gru
  memorax train --env gymnasium::CartPole-v1 --seeds 1 --logger tensorboard
  memorax train --config run.toml --ppo.num-minibatches 8
  memorax train --resume runs/ppo-CartPole-v1-20261125-120000
  memorax train --config runs/ppo-CartPole-v1-20261125-120000/run.json --seed 1
"""


def add_train_command(commands: argparse._SubParsersAction, shown_algo: str | None = None) -> None:
    """Registers ``train`` on the ``memorax`` parser; its help lists the options of
    ``shown_algo`` (default: the default algorithm) and only names the others'."""
    parser = commands.add_parser(
        "train",
        help="train an agent (default: PPO on gymnax::CartPole-v1)",
        description="Train an agent and write metrics, checkpoints and a learning curve "
        "to a run directory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    run = parser.add_argument_group("run")
    defaults = RunSettings()
    run.add_argument("--algo", choices=sorted(ALGORITHMS), help=f"(default: {defaults.algo})")
    run.add_argument(
        "--env", metavar="NAMESPACE::ID", help=f"environment id (default: {defaults.env})"
    )
    run.add_argument(
        "--env-arg",
        dest="env_args",
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument for make(), repeatable (e.g. memory_length=10)",
    )
    run.add_argument(
        "--torso",
        choices=TORSOS,
        metavar="TORSO",
        help=f"{', '.join(TORSOS)} (default: mlp; gru for --algo r2d2)",
    )
    run.add_argument(
        "--total-steps",
        dest="num_steps",
        type=_positive_int,
        help=f"env steps per seed, all env copies counted (default: {defaults.num_steps:,}; "
        "not --ALGO.num-steps, the steps per env copy and update)",
    )
    # The name of earlier versions, still accepted.
    run.add_argument("--num-steps", dest="num_steps", type=_positive_int, help=argparse.SUPPRESS)
    run.add_argument(
        "--seeds",
        type=_positive_int,
        help="seeds to train, in one jax.vmap (on a callback env each seed steps host envs "
        f"of its own) (default: {defaults.seeds})",
    )
    run.add_argument("--seed", type=int, help="base random seed (default: 0)")
    run.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<name>)")
    run.add_argument(
        "--logger",
        dest="loggers",
        action="append",
        choices=LOGGERS,
        help="console (a line per update), csv, jsonl, tensorboard, wandb; repeatable "
        "(default: csv; a progress bar is always shown)",
    )
    run.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings from a TOML or YAML file, or a run's own run.json",
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint",
    )
    run.add_argument("--hidden-size", type=_positive_int, help="network width (default: 64)")
    run.add_argument("--learning-rate", type=float, help="Adam step size (default: 2.5e-4)")
    run.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        metavar="NAME=V1,V2,...",
        help="values of a float hyperparameter (ALGO.FIELD or learning-rate) to train in one "
        "program, e.g. --sweep ppo.gamma=0.95,0.99; repeatable: every combination is a "
        "setting, each trained with --seeds seeds, results in RUN_DIR/setting-K",
    )
    run.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="UPDATES",
        help="checkpoint every this many updates (default: a tenth of the run)",
    )
    shown = shown_algo if shown_algo in ALGORITHMS else defaults.algo
    for name, spec in ALGORITHMS.items():
        # Every algorithm's options parse; the help lists one algorithm's (each has 15-25).
        group: Any = parser
        if name == shown:
            description = f"fields of {spec.config_class.__name__} (--{name}.FIELD VALUE)"
            group = parser.add_argument_group(f"{name} config", description)
        for config_field in spec.config_fields():
            default = spec.defaults.get(config_field.name, config_field.default)
            text = "" if default is dataclasses.MISSING else f" (default: {default})"
            if config_field.name in spec.memory_defaults:
                text += f"; {spec.memory_defaults[config_field.name]} with a memory torso"
            group.add_argument(
                f"--{name}.{config_field.name.replace('_', '-')}",
                dest=f"{name}.{config_field.name}",
                metavar="VALUE",
                help=f"{config_field.name}{text}" if name == shown else argparse.SUPPRESS,
            )
    parser.set_defaults(run=run_train, command_parser=parser)


def run_train(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Resolves the settings and trains."""
    from memorax.algorithms.non_finite import NonFiniteError
    from memorax.cli.training_run import is_disk_full, train_run
    from memorax.envs import (
        BackendNotInstalledError,
        EnvironmentKwargsError,
        UnknownEnvironmentError,
        UnknownNamespaceError,
    )

    # The library's own errors, shown as usage errors without a traceback.
    user_errors = (
        SettingsError,
        UnknownNamespaceError,
        BackendNotInstalledError,
        UnknownEnvironmentError,
        EnvironmentKwargsError,
    )
    try:
        settings, resume_dir = resolve_settings(vars(options))
        return train_run(settings, resume_dir=resume_dir)
    except user_errors as error:
        parser.error(str(error))
    except Exception as error:
        # A run that diverged or filled the disk is not a bug: the message and the note
        # on what the run directory keeps say everything, without a traceback.
        if not (isinstance(error, NonFiniteError) or is_disk_full(error)):
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = str(error) if isinstance(error, NonFiniteError) else f"disk full: {first_line}"
        print(f"memorax train: error: {reason}", *getattr(error, "__notes__", ()), sep="\n",
              file=sys.stderr)  # fmt: skip
        return TRAINING_FAILED


def resolve_settings(given: dict[str, Any]) -> tuple[RunSettings, Path | None]:
    """Merges defaults, the config file (or the resumed run) and flags into settings."""
    given = {k: v for k, v in given.items() if k not in ("run", "command", "command_parser")}
    resume_dir = given.pop("resume", None)
    sweeps = given.pop("sweeps", None)
    if resume_dir is not None:
        run_file = Path(resume_dir) / RUN_FILE
        if not run_file.is_file():
            raise SettingsError(
                f"--resume {resume_dir}: no {RUN_FILE} there; pass a directory written by "
                "memorax train."
            )
        settings = RunSettings.from_json(run_file.read_text())
        if settings.sweep or sweeps:
            raise SettingsError(
                f"--resume {resume_dir}: sweep runs keep no checkpoints yet, so they cannot be "
                "resumed; start the sweep again."
            )
        extra = sorted(set(given) - {"num_steps"})
        if extra:
            raise SettingsError(
                f"--resume continues the saved run with its own settings; only --num-steps "
                f"may change, but {', '.join('--' + e.replace('_', '-') for e in extra)} "
                "was given."
            )
        if "num_steps" in given:
            settings.num_steps = given["num_steps"]
        settings.out = str(resume_dir)
        return settings, Path(resume_dir)

    values = dataclasses.asdict(RunSettings())
    values["torso"] = None  # the algorithm's default torso unless the config or a flag names one
    config_file = given.pop("config", None)
    if config_file is not None:
        _merge_config_file(values, load_config_file(config_file), config_file)
    env_args = given.pop("env_args", None)
    for key, value in given.items():
        if "." in key:
            continue
        values[key] = value
    algo = values["algo"]
    if algo not in ALGORITHMS:
        raise SettingsError(f"Unknown algo {algo!r}; choose one of {', '.join(ALGORITHMS)}.")
    spec = ALGORITHMS[algo]
    if values["torso"] is None:
        values["torso"] = spec.default_torso
    for key, text in given.items():
        if "." not in key:
            continue
        owner, name = key.split(".", 1)
        if owner != algo:
            raise SettingsError(f"--{key.replace('_', '-')} configures {owner}, not --algo {algo}.")
        values["algo_config"][name] = parse_field_value(spec.config_class, name, text, owner)
    for pair in env_args or []:
        if "=" not in pair:
            raise SettingsError(f"--env-arg {pair!r}: write KEY=VALUE, e.g. memory_length=10.")
        key, text = pair.split("=", 1)
        values["env_kwargs"][key] = _parse_literal(text)
    if values["torso"] not in TORSOS:
        raise SettingsError(f"Unknown torso {values['torso']!r}; choose one of {TORSOS}.")
    if "loggers" in given:
        values["loggers"] = list(dict.fromkeys(given["loggers"]))
    for text in sweeps or []:
        name, values_text = _parse_sweep(text, algo)
        if name in values["sweep"]:
            raise SettingsError(f"--sweep {text}: {name} is swept twice; give its values once.")
        values["sweep"][name] = values_text
    return RunSettings(**values), None


def _parse_sweep(text: str, algo: str) -> tuple[str, list[float]]:
    """``ppo.gamma=0.9,0.99`` or ``learning-rate=1e-4,1e-3`` -> (field name, values)."""
    name, separator, values_text = text.partition("=")
    if not separator or not name or not values_text:
        raise SettingsError(
            f"--sweep {text!r}: write NAME=V1,V2,..., e.g. --sweep {algo}.gamma=0.95,0.99 or "
            "--sweep learning-rate=1e-4,1e-3."
        )
    owner, dot, field_name = name.rpartition(".")
    if dot and owner != algo:
        raise SettingsError(f"--sweep {text}: {name} configures {owner}, not --algo {algo}.")
    try:
        numbers = [float(value) for value in values_text.split(",")]
    except ValueError as error:
        raise SettingsError(f"--sweep {text}: the values must be numbers ({error}).") from error
    return field_name.replace("-", "_"), numbers


def _merge_config_file(values: dict[str, Any], data: dict[str, Any], path: Path) -> None:
    algo = data.get("algo", values["algo"])
    for key, value in data.items():
        if key == "env_kwargs" or key in ALGORITHMS:
            if not isinstance(value, dict):
                raise SettingsError(f"--config {path}: [{key}] must be a table.")
            target = values["env_kwargs"] if key == "env_kwargs" else values["algo_config"]
            if key in ALGORITHMS and key != algo:
                raise SettingsError(f"--config {path}: [{key}] does not match algo {algo!r}.")
            if key in ALGORITHMS:
                known = {f.name for f in ALGORITHMS[key].config_fields()}
                unknown = sorted(set(value) - known)
                if unknown:
                    raise SettingsError(
                        f"--config {path}: [{key}] has no field(s) {', '.join(unknown)}; "
                        f"fields: {', '.join(sorted(known))}."
                    )
            target.update(value)
        elif key.replace("-", "_") in SETTING_NAMES - {"algo_config", "env_kwargs"}:
            values[key.replace("-", "_")] = value
        else:
            raise SettingsError(
                f"--config {path}: unknown setting {key!r}. Settings: "
                f"{', '.join(sorted(SETTING_NAMES - {'algo_config'}))}, and a "
                f"[{algo}] table of config fields."
            )


def _parse_literal(text: str) -> Any:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
