"""``memorax eval RUN_DIR``: the saved policies on N complete episodes per seed."""

from __future__ import annotations

import argparse
import json
import math
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["add_eval_command", "evaluate_run"]

EVAL_FILE = "eval-step{step}.json"


def add_eval_command(commands: argparse._SubParsersAction) -> None:
    """Registers ``eval`` on the ``memorax`` parser."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a run's saved policies on more episodes",
        description="Every seed's deterministic policy from a run's checkpoint plays "
        "--episodes complete episodes on the run's env (or --env, an env with the same "
        "spaces). Prints each seed's return and length statistics and the interquartile "
        "mean over seeds with a 95%% bootstrap confidence interval, and writes them to "
        "RUN_DIR/evaluation/eval-step<STEP>.json.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--episodes", type=int, default=10, help="episodes per seed (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (default: 0)")
    parser.add_argument("--env", metavar="NAMESPACE::ID", help="evaluate on another env")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=100_000,
        help="steps per env copy at most; unfinished episodes are reported (default: %(default)s)",
    )
    parser.set_defaults(run=run_eval, command_parser=parser)


def evaluate_run(
    run_dir: Path,
    episodes: int = 10,
    seed: int = 0,
    env_id: str | None = None,
    step: int | None = None,
    max_steps: int = 100_000,
) -> dict[str, Any]:
    """Every seed's policy on ``episodes`` complete episodes; the results as a dict
    (also written to ``RUN_DIR/evaluation/eval-step<STEP>.json``)."""
    from memorax.cli.run_settings import EVALUATION_DIR
    from memorax.envs import make
    from memorax.policy import load_run
    from memorax.statistics import aggregate

    if episodes < 1:
        raise ValueError(f"--episodes must be a positive integer, got {episodes}.")
    run = load_run(run_dir, step)
    try:
        settings, agent = run.settings, run.agent
        same_env = env_id is None or env_id == settings.env
        env_id = settings.env if env_id is None else env_id
        kwargs = settings.env_kwargs if same_env else {}
        eval_env, eval_params = make(env_id, num_envs=run.env.num_envs, **kwargs)
        try:
            # Each env copy plays its share; the first `episodes` of each seed are kept.
            per_copy = math.ceil(episodes / eval_env.num_envs)
            evaluate = partial(
                agent.evaluate, num_episodes=per_copy, env=eval_env, env_params=eval_params,
                max_steps=max_steps,
            )  # fmt: skip
            keys = jax.random.split(jax.random.key(seed), settings.seeds)
            evaluated = jax.jit(jax.vmap(evaluate))(keys, run.states).evaluation
            returns = np.asarray(evaluated.returns)  # [seeds, copies, per_copy]
            lengths = np.asarray(evaluated.lengths)
        finally:
            eval_env.close()
    finally:
        run.close()
    # Episode order: the first episode of every copy, then the second, ...
    returns = returns.transpose(0, 2, 1).reshape(settings.seeds, -1)[:, :episodes]
    lengths = lengths.transpose(0, 2, 1).reshape(settings.seeds, -1)[:, :episodes]
    unfinished = int(np.sum(~np.isfinite(returns)))
    if unfinished:
        raise ValueError(
            f"{unfinished} of {returns.size} episodes did not end within --max-steps "
            f"{max_steps}; raise --max-steps."
        )
    means = returns.mean(axis=1)
    result = {
        "run_dir": str(run_dir),
        "env": env_id,
        "step": run.step,
        "episodes_per_seed": episodes,
        "evaluation_seed": seed,
        "seeds": [
            {
                "seed": index,
                "return_mean": float(means[index]),
                "return_std": float(returns[index].std()),
                "return_min": float(returns[index].min()),
                "return_max": float(returns[index].max()),
                "length_mean": float(lengths[index].mean()),
                "returns": returns[index].tolist(),
                "lengths": lengths[index].astype(int).tolist(),
            }
            for index in range(settings.seeds)
        ],
        # Intervals over seeds need two at least; a one-seed run reports its rows only.
        "aggregate": {
            name: interval._asdict()
            for name, interval in (
                aggregate(means, ("iqm", "mean")) if settings.seeds > 1 else {}
            ).items()
        },
    }
    out = Path(run_dir) / EVALUATION_DIR / EVAL_FILE.format(step=run.step)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    result["file"] = str(out)
    return result


def run_eval(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Evaluates and prints the table."""
    from memorax.envs import EnvironmentKwargsError, UnknownEnvironmentError, UnknownNamespaceError

    try:
        result = evaluate_run(
            options.run_dir, options.episodes, options.seed, options.env, options.step,
            options.max_steps,
        )  # fmt: skip
    except (
        ValueError, FileNotFoundError, UnknownEnvironmentError, UnknownNamespaceError,
        EnvironmentKwargsError,
    ) as error:  # fmt: skip
        parser.error(str(error))
    print(
        f"{result['env']}, checkpoint step {result['step']}, {result['episodes_per_seed']} "
        "episodes per seed, deterministic policy:"
    )
    print("| seed | return mean | std | min | max | length mean |")
    print("|---|---|---|---|---|---|")
    for row in result["seeds"]:
        print(
            f"| {row['seed']} | {row['return_mean']:.4g} | {row['return_std']:.3g} | "
            f"{row['return_min']:.4g} | {row['return_max']:.4g} | {row['length_mean']:.4g} |"
        )
    for name, interval in result["aggregate"].items():
        print(
            f"{name} of the seeds' mean returns: {interval['point']:.4g} "
            f"[95% CI {interval['low']:.4g}, {interval['high']:.4g}]"
        )
    if not result["aggregate"]:
        print("(one seed: no interval over seeds; train with --seeds N for one)")
    print(f"written to {result['file']}")
    return 0
