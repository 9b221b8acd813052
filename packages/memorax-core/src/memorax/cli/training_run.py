"""One training run as ``memorax train`` does it: chunks, logs, checkpoints, a plot.

Training runs in chunks of ``checkpoint_every`` updates; after each chunk
the full state (every seed's agent state, whose counters and keys are part
of it) is checkpointed. Chunk ``c`` trains with a key derived from the base
seed and ``c`` alone, so resuming from a checkpoint replays exactly the
chunks an uninterrupted run would have run: on a JAX-native env the result
is the same bit for bit.

All seeds train in one ``jax.vmap``: on JAX-native envs and on callback envs,
whose seeds each step host envs of their own. An env that declares it
cannot be vmapped over seeds (``capabilities.vmap_over_seeds`` False) trains
its seeds one after another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib.util
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.algorithms.non_finite import NonFiniteError
from memorax.algorithms.sweep import LEARNING_RATE, Sweep, grid
from memorax.checkpoints import Checkpointer, DamagedCheckpointError, GracefulInterrupt
from memorax.cli.agents import ALGORITHMS
from memorax.cli.run_settings import (
    EVALUATION_DIR,
    EVALUATION_METRIC,
    RUN_FILE,
    RunSettings,
    SettingsError,
)
from memorax.cli.sweep_run import train_sweep
from memorax.envs import make
from memorax.envs.host_callbacks import surface_host_errors
from memorax.logging import (
    ConsoleLogger,
    CSVLogger,
    JSONLLogger,
    Logger,
    MultiLogger,
    Progress,
    TensorBoardLogger,
    WandbLogger,
    as_metrics_callback,
)
from memorax.plotting import plot_runs

__all__ = ["CURVE_FILE", "EVALUATION_CURVE_FILE", "is_disk_full", "run_identity", "train_run"]

CURVE_FILE = "learning_curve.png"
EVALUATION_CURVE_FILE = "evaluation_curve.png"
INTERRUPTED = 130


class _SeedShift:
    """Logs metrics of the seed trained alone as seed ``offset`` (sequential seeds)."""

    def __init__(self, logger: Logger):
        self.logger = logger
        self.offset = 0

    def log(self, step: int, metrics: Any, seed: int = 0) -> None:
        self.logger.log(step, metrics, seed + self.offset)

    def close(self) -> None:
        self.logger.close()


def train_run(settings: RunSettings, resume_dir: Path | None = None) -> int:
    """Trains as ``settings`` say, writing into the run directory; returns the exit status."""
    # JAX logs every exception raised in an io_callback with its traceback; the checks that
    # raise from the host (NaN guard, action ranges) reach the user as their own errors,
    # so the log would only print the same message twice.
    logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)
    spec = ALGORITHMS[settings.algo]
    config_values = {**spec.defaults_for(settings.torso), **settings.algo_config}
    try:
        config = spec.config_class(**config_values)
    except (TypeError, ValueError) as error:
        raise SettingsError(str(error)) from error
    try:
        env, env_params = make(settings.env, num_envs=config.num_envs, **settings.env_kwargs)
    except ValueError as error:  # malformed ids and num_envs
        raise SettingsError(str(error)) from error
    try:
        return _train_on(env, env_params, config, settings, resume_dir)
    finally:
        env.close()


def _train_on(env, env_params, config, settings: RunSettings, resume_dir: Path | None) -> int:
    """The run itself, once the env exists (``train_run`` closes the env afterwards)."""
    spec = ALGORITHMS[settings.algo]
    per_update = config.num_envs * config.num_steps
    total_updates = settings.num_steps // per_update
    if total_updates < 1:
        raise SettingsError(
            f"--num-steps {settings.num_steps} is less than one update "
            f"(num_envs * num_steps = {per_update} env steps)."
        )
    requested_updates = total_updates
    settings.checkpoint_every, total_updates = _chunk_plan(total_updates, settings.checkpoint_every)
    # The agent is built before anything is written, so a bad combination (a torso
    # the algorithm cannot use, an action space it does not support) leaves no
    # half-made run behind. Its metrics reach the logger made below.
    metrics_sinks: list[Any] = []

    def metrics_callback(*args: Any, **kwargs: Any) -> Any:
        return metrics_sinks[0](*args, **kwargs)

    try:
        agent = spec.build(
            config,
            env,
            env_params,
            settings.torso,
            settings.hidden_size,
            settings.learning_rate,
            None if settings.sweep else metrics_callback,
            injected_learning_rate=LEARNING_RATE in settings.sweep,
        )
        sweep = Sweep(agent, grid(**settings.sweep)) if settings.sweep else None
    except ValueError as error:
        raise SettingsError(str(error)) from error
    _check_logger_dependencies(settings.loggers)
    run_dir = _run_dir(settings, resume_dir)
    if resume_dir is None and (run_dir / RUN_FILE).exists():
        raise SettingsError(
            f"{run_dir} already holds a run; continue it with `memorax train --resume "
            f"{run_dir}` or choose another --out."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).write_text(settings.to_json())
    if sweep is not None:
        base_key = jax.random.key(settings.seed)
        num_chunks = total_updates // settings.checkpoint_every
        return train_sweep(
            sweep,
            settings,
            run_dir,
            # The keys a plain run of these seeds uses, chunk by chunk.
            jax.random.fold_in(base_key, 0),
            [_chunk_key(base_key, 0, chunk) for chunk in range(num_chunks)],
            settings.checkpoint_every * per_update,
            CURVE_FILE,
        )

    vmapped = env.capabilities.vmap_over_seeds
    if settings.seeds > 1 and not vmapped:
        print(
            f"{settings.env} declares that it cannot be vmapped over seeds: training the "
            f"{settings.seeds} seeds one after another.",
            flush=True,
        )
    checkpointer = Checkpointer(run_dir, max_to_keep=2)
    resumed = _resume_point(checkpointer, resume_dir, settings)
    start_steps = resumed["env_steps"] if resumed else 0
    total_steps = total_updates * per_update
    progress = Progress(total_steps, initial_steps=start_steps)
    resume_seed = None if vmapped or not resumed else resumed["seed"]
    logger = _SeedShift(
        MultiLogger(
            [
                *_loggers(settings, run_dir, start_steps if resumed else None, resume_seed),
                progress,
            ]
        )
    )
    metrics_sinks.append(as_metrics_callback(logger))
    print(
        f"training {settings.algo} on {settings.env} ({settings.torso} torso), "
        f"{settings.seeds} seed(s) x {total_steps:,} env steps -> {run_dir}",
        flush=True,
    )
    if total_updates != requested_updates:
        print(
            f"(--num-steps {settings.num_steps:,} rounded up to {total_steps:,}: "
            f"{total_updates // settings.checkpoint_every} chunks of "
            f"{settings.checkpoint_every} updates, so that one compiled program runs them all)",
            flush=True,
        )
    num_chunks = total_updates // settings.checkpoint_every
    if (
        resumed is not None
        and resumed["chunk"] + 1 >= num_chunks
        and (vmapped or resumed["seed"] + 1 >= settings.seeds)
    ):
        logger.close()
        checkpointer.close()
        print(
            f"{run_dir} is complete: it trained all {total_steps:,} env steps per seed. "
            f"To train it further, pass a larger --num-steps with --resume.",
            flush=True,
        )
        return 0
    started = time.monotonic()
    base_key = jax.random.key(settings.seed)
    plan = _Plan(agent, settings, base_key, settings.checkpoint_every * per_update, num_chunks,
                 checkpointer, resumed)  # fmt: skip
    if vmapped:
        plan.evaluation_logger = CSVLogger(
            run_dir / EVALUATION_DIR, resume_step=start_steps if resumed else None
        )
        if not env.capabilities.transparent_state:
            # Evaluating on a callback training env would reset it: a separate one.
            plan.eval_env = make(settings.env, num_envs=env.num_envs, **settings.env_kwargs)[0]
    try:
        with GracefulInterrupt(abort_on_second=True) as interrupt:
            # Training runs on a worker thread, so that this one takes Ctrl-C at once, also
            # while a compiled program (or the compiler) runs.
            if vmapped:
                interrupted, returns = _on_worker(lambda: _train_vmapped(plan, interrupt))
            else:
                interrupted, returns = _on_worker(
                    lambda: _train_sequential(plan, interrupt, logger)
                )
    except Exception as error:
        # Whatever stopped training (a NaN update, a host env that raised, a full disk):
        # the metrics logged so far reach their files and the user learns what is kept.
        _close_after_failure(logger, checkpointer, plan.evaluation_logger)
        plan.evaluation_logger = None  # closed: the finally below must not fail on it again
        error.add_note(_kept_after_failure(run_dir, checkpointer, error))
        raise
    finally:
        if plan.eval_env is not None:
            plan.eval_env.close()
        if plan.evaluation_logger is not None:
            plan.evaluation_logger.close()
    jax.effects_barrier()  # the last metrics callbacks reach the loggers before they close
    logger.close()
    checkpointer.close()
    if returns:
        shown = ", ".join(f"{r:.2f}" for r in returns)
        print(f"evaluation return (deterministic policy) per seed: {shown}", flush=True)
    elapsed = time.monotonic() - started
    try:
        curve: Any = plot_runs(
            [run_dir], run_dir / CURVE_FILE, title=f"{settings.algo} on {settings.env}"
        )
    except ValueError:
        # A short run in which no episode ended has no curve; the run itself is fine.
        curve = "none (no episode ended during training; train for more steps)"
    if vmapped:
        # No curve when no evaluation episode ended within its step limit (all NaN).
        with contextlib.suppress(ValueError):
            plot_runs([run_dir / EVALUATION_DIR], run_dir / EVALUATION_CURVE_FILE,
                      metric=EVALUATION_METRIC,
                      title=f"{settings.algo} on {settings.env}, deterministic policy")  # fmt: skip
    if interrupted:
        print(
            f"interrupted: checkpoint and logs are in {run_dir}; continue with "
            f"`memorax train --resume {run_dir}`",
            flush=True,
        )
        return INTERRUPTED
    print(f"done in {elapsed:.1f} s; learning curve: {curve}", flush=True)
    return 0


def _close_after_failure(
    logger: Any, checkpointer: Checkpointer, evaluation_logger: Logger | None
) -> None:
    """Flushes and closes the loggers and the checkpointer after training failed; a
    second failure here (the disk is still full) must not hide the first."""
    closers = [jax.effects_barrier, logger.close, checkpointer.close]
    if evaluation_logger is not None:
        closers.append(evaluation_logger.close)
    for close in closers:
        try:
            close()
        except Exception as error:
            print(f"(while closing the run after the error: {error!r})", file=sys.stderr)


def _kept_after_failure(run_dir: Path, checkpointer: Checkpointer, error: Exception) -> str:
    """What the run directory still holds after ``error`` stopped training, and what to do."""
    try:
        last = checkpointer.latest_step()
    except Exception:  # the checkpoint folder itself is unreadable
        last = None
    if last is None:
        kept = f"{run_dir} holds the metrics logged so far and no checkpoint yet."
    else:
        kept = (
            f"{run_dir} keeps the metrics logged so far and its checkpoints; the last "
            f"complete one is env step {last} ({checkpointer.directory / str(last)})."
        )
    if is_disk_full(error):
        advice = (
            f"The disk holding {run_dir} is full: free space (or move the run directory), "
            f"then continue with `memorax train --resume {run_dir}`; a checkpoint whose "
            "write was cut short is skipped."
        )
    elif isinstance(error, NonFiniteError):
        advice = (
            "Resuming it would repeat the same updates: start a new run with other settings "
            "(e.g. a lower learning rate)."
        )
    elif last is None:
        advice = "Fix the cause and start the run again."
    else:
        advice = f"Fix the cause and continue with `memorax train --resume {run_dir}`."
    return f"{kept} {advice}"


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or one it came from) is a write that found no space left.

    orbax's tensorstore reports a full disk in the text of a ``ValueError``, Python
    as an ``OSError`` with ``errno.ENOSPC``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclasses.dataclass
class _Plan:
    """What the chunk loops share: the agent, the chunks and where to resume."""

    agent: Any
    settings: RunSettings
    base_key: jax.Array
    chunk_steps: int
    num_chunks: int
    checkpointer: Checkpointer
    resumed: dict | None
    evaluation_logger: Logger | None = None
    eval_env: Any = None


def _train_vmapped(plan: _Plan, interrupt: GracefulInterrupt) -> tuple[bool, list[float]]:
    """Every seed in one vmap, chunk by chunk; ``(interrupted, evaluation returns)``."""
    agent, seeds, resumed = plan.agent, plan.settings.seeds, plan.resumed
    init = jax.jit(jax.vmap(agent.init))
    states = init(jax.random.split(jax.random.fold_in(plan.base_key, 0), seeds))
    # Every chunk starts from empty metrics (the chunk's own are logged as they come), so
    # every call, and every checkpoint, has one structure: one compiled program.
    empty_metrics = states.metrics
    first_chunk = 0
    if resumed is not None:
        states = _restore(plan.checkpointer, states, resumed["step"])
        if not agent.env.capabilities.transparent_state:
            states = jax.jit(jax.vmap(agent.reset_env))(
                jax.random.split(jax.random.fold_in(plan.base_key, 2), seeds), states
            )
            _say_host_env_restarts(plan.settings.env)
        first_chunk = resumed["chunk"] + 1
    train = jax.jit(jax.vmap(agent.train, in_axes=(0, 0, None)), static_argnums=2)
    keys = jax.random.split(_chunk_key(plan.base_key, 0, first_chunk), seeds)
    train = _compiled(train, keys, states, plan.chunk_steps)
    evaluate = jax.jit(jax.vmap(partial(agent.evaluate, env=plan.eval_env)))
    for chunk in range(first_chunk, plan.num_chunks):
        keys = jax.random.split(_chunk_key(plan.base_key, 0, chunk), seeds)
        states = train(keys, states.replace(metrics=empty_metrics))
        env_steps = int(np.max(np.asarray(states.env_steps)))
        plan.checkpointer.save(
            env_steps,
            states.replace(metrics=empty_metrics),
            {"chunk": chunk, "seed": 0, "env_steps": env_steps, "run": run_identity(plan.settings)},
        )
        if interrupt.requested:
            return True, []
        if plan.evaluation_logger is not None:
            chunk_key = jax.random.fold_in(jax.random.fold_in(plan.base_key, 4), chunk)
            evaluation_keys = jax.random.split(chunk_key, seeds)
            _log_evaluation(plan.evaluation_logger, evaluate(evaluation_keys, states))
    keys = jax.vmap(partial(jax.random.fold_in, jax.random.fold_in(plan.base_key, 3)))(
        jnp.arange(seeds)
    )
    evaluated = jax.jit(jax.vmap(agent.evaluate))(keys, states).evaluation.returns
    return False, np.nanmean(np.asarray(evaluated), axis=(1, 2)).tolist()


def _train_sequential(
    plan: _Plan, interrupt: GracefulInterrupt, logger: _SeedShift
) -> tuple[bool, list[float]]:
    """Seeds one after another (callback envs), chunk by chunk; ``(interrupted, returns)``."""
    agent, settings, resumed = plan.agent, plan.settings, plan.resumed
    init = jax.jit(agent.init)
    first_seed = resumed["seed"] if resumed else 0
    train = None
    returns: list[float] = []
    for seed in range(first_seed, settings.seeds):
        logger.offset = seed
        state = init(jax.random.fold_in(jax.random.fold_in(plan.base_key, 0), seed))
        empty_metrics = state.metrics
        first_chunk = 0
        if resumed is not None and seed == resumed["seed"]:
            state = _restore(plan.checkpointer, state, resumed["step"])
            # The host env behind a callback backend cannot be restored: start
            # fresh episodes from the restored agent.
            state = agent.reset_env(jax.random.fold_in(plan.base_key, 2), state)
            _say_host_env_restarts(settings.env)
            first_chunk = resumed["chunk"] + 1
        if train is None:  # one program for every chunk of every seed
            key = _chunk_key(plan.base_key, seed, first_chunk)
            train = _compiled(jax.jit(agent.train, static_argnums=2), key, state, plan.chunk_steps)
        for chunk in range(first_chunk, plan.num_chunks):
            state = train(
                _chunk_key(plan.base_key, seed, chunk), state.replace(metrics=empty_metrics)
            )
            steps = int(state.env_steps) + seed * plan.num_chunks * plan.chunk_steps
            plan.checkpointer.save(
                steps,
                state.replace(metrics=empty_metrics),
                {
                    "chunk": chunk,
                    "seed": seed,
                    "env_steps": int(state.env_steps),
                    "run": run_identity(settings),
                },
            )
            if interrupt.requested:
                return True, returns
        key = jax.random.fold_in(jax.random.fold_in(plan.base_key, 3), seed)
        returns.append(_evaluation_return(agent, state, key))
    return False, returns


def _say_host_env_restarts(env_name: str) -> None:
    print(
        f"{env_name} is a callback env whose host state cannot be saved: the agent is "
        "restored and the env starts new episodes.",
        flush=True,
    )


def _log_evaluation(logger: Logger, evaluated: Any) -> None:
    """Each seed's mean evaluation return (one episode per env copy) at its env steps."""
    returns = np.asarray(evaluated.evaluation.returns)  # [seeds, num_envs, episodes]
    steps = np.asarray(evaluated.env_steps)
    for seed in range(len(returns)):
        finite = returns[seed][np.isfinite(returns[seed])]
        value = float(finite.mean()) if finite.size else float("nan")
        logger.log(int(steps[seed]), {EVALUATION_METRIC: value}, seed)


def _compiled(train: Any, key: jax.Array, state: Any, num_steps: int) -> Any:
    """``train`` compiled ahead of time for ``num_steps``, saying so while it compiles."""
    print("compiling the training program (once per run)...", flush=True)
    start = time.monotonic()
    compiled = train.lower(key, state, num_steps).compile()
    print(f"compiled in {time.monotonic() - start:.1f} s", flush=True)
    return compiled


def _evaluation_return(agent: Any, state: Any, key: jax.Array) -> float:
    """The deterministic policy's mean return, one episode per env copy."""
    return float(np.nanmean(np.asarray(agent.evaluate(key, state).evaluation.returns)))


def _on_worker(work: Callable[[], Any]) -> Any:
    """``work()`` run on a worker thread while this thread waits, so that signal handlers
    (Ctrl-C) run at once; its result, or its exception re-raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            # Errors raised on the host (a NaN update, a host env's exception) as themselves.
            with surface_host_errors():
                outcome["result"] = work()
        except BaseException as error:  # handed to the waiting thread, which raises it
            outcome["error"] = error

    worker = threading.Thread(target=run, name="memorax-train", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# --logger name -> (the module it needs, the memorax-core extra that installs it)
_LOGGER_NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}


def _check_logger_dependencies(loggers: list[str]) -> None:
    """A :class:`SettingsError` with the install lines when a chosen logger's library is
    missing, raised before the run directory exists."""
    for name in loggers:
        module, extra = _LOGGER_NEEDS.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise SettingsError(
                f"--logger {name} needs {module}, which is not installed. Install the "
                f'"{extra}" extra: pip install "memorax-core[{extra}]"; from a clone, '
                f'pip install "./packages/memorax-core[{extra}]" or add --extra {extra} to '
                "uv run / uv sync (every package of the workspace offers it)."
            )


def _chunk_key(base_key: jax.Array, seed: int, chunk: int) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(base_key, 1), seed), chunk)


def _chunk_plan(total_updates: int, every: int | None) -> tuple[int, int]:
    """``(updates per chunk, total updates)`` with every chunk the same size, so one
    compiled program runs them all.

    ``every`` given (a flag, a config file or a resumed run): the total is rounded up to a
    multiple of it. Not given: about a tenth of the run, preferring a divisor of the
    total between a twentieth and a fifth of it; without one, the total is rounded up.
    """
    if every is None:
        target = max(1, math.ceil(total_updates / 10))
        near = [d for d in range(max(1, target // 2), 2 * target + 1) if total_updates % d == 0]
        every = min(near, key=lambda d: abs(d - target)) if near else target
    return every, math.ceil(total_updates / every) * every


def _restore(checkpointer: Checkpointer, target: Any, step: int) -> Any:
    """The checkpoint ``step`` like ``target``, or a :class:`SettingsError` saying why the
    run cannot continue (nothing has been trained or written yet)."""
    try:
        return checkpointer.restore(target, step)
    except DamagedCheckpointError as error:
        raise SettingsError(f"--resume {checkpointer.run_dir}: {error}") from error
    except ValueError as error:
        raise SettingsError(
            f"--resume {checkpointer.run_dir}: its checkpoint does not fit the agent this "
            f"version of Memorax builds from the run's settings. {error}"
        ) from error


# The settings that fix what a checkpoint holds; a resumed run must match them all.
_IDENTITY = ("algo", "env", "env_kwargs", "torso", "hidden_size", "seeds", "algo_config")


def run_identity(settings: RunSettings) -> dict[str, Any]:
    """The settings a checkpoint of this run is only valid for, saved with each one."""
    return {name: getattr(settings, name) for name in _IDENTITY}


def _resume_point(
    checkpointer: Checkpointer, resume_dir: Path | None, settings: RunSettings
) -> dict | None:
    """The latest complete checkpoint's metadata, or a :class:`SettingsError` before any
    training when there is none, it cannot be read, or another run's settings wrote it."""
    if resume_dir is None:
        return None
    step = checkpointer.latest_step()
    if step is None:
        raise SettingsError(f"--resume {resume_dir}: the run has no checkpoint to resume from.")
    try:
        metadata = checkpointer.metadata(step)
    except DamagedCheckpointError as error:
        raise SettingsError(f"--resume {resume_dir}: {error}") from error
    saved = metadata.get("run")  # absent in checkpoints of versions before it was kept
    if saved is not None:
        current = json.loads(json.dumps(run_identity(settings)))  # as JSON would give it back
        differences = [
            f"{name}: checkpoint {saved.get(name)!r}, {RUN_FILE} {current[name]!r}"
            for name in _IDENTITY
            if saved.get(name) != current[name]
        ]
        if differences:
            raise SettingsError(
                f"--resume {resume_dir}: checkpoint step {step} was written by a run with "
                f"other settings ({'; '.join(differences)}). A checkpoint only fits the run "
                f"that wrote it: restore {RUN_FILE} as it was, or start a new run with "
                "`memorax train --config` and the settings you want."
            )
    return {"step": step, **metadata}


def _run_dir(settings: RunSettings, resume_dir: Path | None) -> Path:
    if resume_dir is not None:
        return resume_dir
    if settings.out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        env_name = settings.env.split("::")[-1]
        settings.out = str(Path("runs") / f"{settings.algo}-{env_name}-{stamp}")
    return Path(settings.out)


def _loggers(
    settings: RunSettings, run_dir: Path, resume_step: int | None, resume_seed: int | None
) -> list[Logger]:
    loggers: list[Logger] = []
    for name in settings.loggers:
        if name == "console":
            loggers.append(ConsoleLogger(stream=sys.stdout))
        elif name == "csv":
            loggers.append(CSVLogger(run_dir, resume_step=resume_step, resume_seed=resume_seed))
        elif name == "jsonl":
            loggers.append(JSONLLogger(run_dir, resume_step=resume_step, resume_seed=resume_seed))
        elif name == "tensorboard":
            loggers.append(TensorBoardLogger(run_dir, resume_step=resume_step))
        elif name == "wandb":
            loggers.append(WandbLogger(run_dir, config=settings.__dict__, resume_step=resume_step))
    if not any(name in ("csv", "jsonl") for name in settings.loggers):
        # The learning curve is drawn from the metrics file: always write one.
        loggers.append(CSVLogger(run_dir, resume_step=resume_step, resume_seed=resume_seed))
    return loggers
