"""Memory benchmark suite: agent x torso x task, several seeds per cell in one ``jax.vmap``.

Every cell builds its agent as ``memorax train`` does (``memorax.cli.agents``:
observation MLP -> torso -> head; memory torsos also see the previous action
and reward), trains ``seeds`` copies in one vmapped, jitted call, evaluates
the deterministic policy and records each seed's final return, the compile
time and the env steps per second of the compiled training call.

Scores are normalised per task as the memory suites' papers do (POPGym,
bsuite): ``(return - random) / (maximum - random)``, where ``random`` is the
mean return of a uniformly random policy on the same env (measured here, by
rolling it out) and ``maximum`` the task's best possible return (``Task``
lists each). Per agent and torso the normalised seed x task matrix is
summarised by the interquartile mean (IQM) with a 95% stratified bootstrap
interval (``memorax.statistics.aggregate``).

Tiers fix the grid and the budgets (``TIERS``): ``smoke`` (seconds, for a
test), ``cpu`` (a subset that a 2-core machine finishes in about 20 minutes)
and ``gpu`` (every agent, every model in ``SEQUENCE_MODELS`` plus the MLP
control, every task, larger budgets). ``benchmarks/README.md`` has the
measured CPU tier.

    .venv/bin/python benchmarks/memory_suite.py --tier smoke
    .venv/bin/python benchmarks/memory_suite.py --tier cpu \
        --json benchmarks/results/memory_suite_cpu.json \
        --figure benchmarks/images/memory_suite_cpu.png
    .venv/bin/python benchmarks/memory_suite.py --report benchmarks/results/memory_suite_cpu.json

Results are written to ``--json`` after every cell, so a stopped run keeps
what it finished; ``--report`` prints the tables (and draws the figure) of
such a file again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.cli.agents import ALGORITHMS
from memorax.envs import Discrete, Environment, make
from memorax.envs.pomdp import MaskObservation
from memorax.networks import SEQUENCE_MODELS
from memorax.statistics import aggregate

# ------------------------------------------------------------------ tasks


@dataclasses.dataclass(frozen=True)
class Task:
    """One partially observable task.

    Attributes:
        make: ``make(num_envs) -> (env, env_params)``.
        maximum: the best possible episode return (normalised score 1).
        eval_episodes: deterministic episodes per env copy at the end.
        note: what makes it need memory.
    """

    make: Callable[[int], tuple[Environment, Any]]
    maximum: float
    eval_episodes: int
    note: str


def _memory_chain(memory_length: int) -> Callable[[int], tuple[Environment, Any]]:
    def build(num_envs: int) -> tuple[Environment, Any]:
        return make("gymnax::MemoryChain-bsuite", num_envs=num_envs, memory_length=memory_length)

    return build


def _masked(env_id: str, keep: list[int]) -> Callable[[int], tuple[Environment, Any]]:
    def build(num_envs: int) -> tuple[Environment, Any]:
        env, env_params = make(env_id, num_envs=num_envs)
        return MaskObservation(env, keep=keep), env_params

    return build


def _navix(env_id: str) -> Callable[[int], tuple[Environment, Any]]:
    def build(num_envs: int) -> tuple[Environment, Any]:
        return make(env_id, num_envs=num_envs, observation_fn="symbolic_first_person")

    return build


def _xminigrid(env_id: str) -> Callable[[int], tuple[Environment, Any]]:
    def build(num_envs: int) -> tuple[Environment, Any]:
        return make(env_id, num_envs=num_envs)

    return build


TASKS: dict[str, Task] = {
    **{
        f"memory-chain-{n}": Task(_memory_chain(n), 1.0, 4,
                                  f"bsuite MemoryChain: recall a +-1 context {n} steps later")
        for n in (5, 10, 30)
    },
    "masked-cartpole": Task(_masked("gymnax::CartPole-v1", [0, 2]), 500.0, 1,
                            "CartPole, velocities hidden (POPGym's StatelessCartPole)"),
    "masked-pendulum": Task(_masked("gymnax::Pendulum-v1", [0, 1]), 0.0, 1,
                            "Pendulum, angular velocity hidden (POPGym's StatelessPendulum); "
                            "maximum 0 is an upper bound, not reachable from every start"),
    "navix-doorkey-5x5": Task(_navix("navix::Navix-DoorKey-Random-5x5-v0"), 1.0, 2,
                              "navix DoorKey, first-person 7x7 view"),
    "xminigrid-memory-s8": Task(_xminigrid("xminigrid::MiniGrid-MemoryS8"), 1.0, 2,
                                "MiniGrid Memory: match the object seen at the start"),
}  # fmt: skip
"""Every task of the suite, by name."""


def random_return(task: Task, key: jax.Array, num_envs: int = 32, steps: int = 2_000) -> float:
    """Mean return of the episodes a uniformly random policy completes in ``steps`` steps
    of ``num_envs`` copies (the normalisation's lower end)."""
    env, env_params = task.make(num_envs)

    def rollout(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        reset_key, key = jax.random.split(key)
        observation, state = env.reset(reset_key, env_params)
        del observation

        def step(carry, key):
            state, running, total, count = carry
            action_key, step_key = jax.random.split(key)
            action = jax.vmap(env.action_space.sample)(jax.random.split(action_key, num_envs))
            _, state, reward, terminated, truncated, _ = env.step(
                step_key, state, action, env_params
            )
            running = running + reward
            done = terminated | truncated
            total = total + jnp.sum(jnp.where(done, running, 0.0))
            count = count + jnp.sum(done)
            return (state, jnp.where(done, 0.0, running), total, count), None

        zeros = jnp.zeros((num_envs,), jnp.float32)
        carry = (state, zeros, jnp.float32(0.0), jnp.int32(0))
        (_, _, total, count), _ = jax.lax.scan(step, carry, jax.random.split(key, steps))
        return total, count

    total, count = jax.jit(rollout)(key)
    if int(count) == 0:
        raise RuntimeError(f"random policy finished no episode in {steps} steps")
    return float(total) / int(count)


# ------------------------------------------------------------------ tiers


@dataclasses.dataclass(frozen=True)
class Tier:
    """A grid and its budgets.

    Attributes:
        agents: agent names (keys of ``memorax.cli.agents.ALGORITHMS``).
        torsos: ``"mlp"`` (the memoryless control) and sequence-model names.
        tasks: names in ``TASKS``.
        seeds: seeds per cell, trained in one ``jax.vmap``.
        steps: env steps per seed, per task.
        hidden_size: units of the encoder and the torso.
        learning_rate: per agent, the same for every torso and task.
        config: per agent, settings over the CLI's defaults.
    """

    agents: tuple[str, ...]
    torsos: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: int
    steps: dict[str, int]
    hidden_size: int
    learning_rate: dict[str, float]
    config: dict[str, dict[str, Any]]


TIERS: dict[str, Tier] = {
    "smoke": Tier(
        agents=("ppo", "pqn"),
        torsos=("mlp", "gru"),
        tasks=("memory-chain-5",),
        seeds=2,
        steps={"memory-chain-5": 4_096},
        hidden_size=16,
        learning_rate={"ppo": 1e-3, "pqn": 1e-3, "r2d2": 1e-3},
        config={
            "ppo": {"num_envs": 8, "num_steps": 16},
            "pqn": {"num_envs": 8, "num_steps": 16, "epsilon_decay_steps": 2_000},
            "r2d2": {"num_envs": 8, "num_steps": 8, "buffer_size": 2_000, "batch_size": 16,
                     "learning_starts": 256, "epsilon_decay_steps": 2_000,
                     "sequence_length": 8, "burn_in_length": 2},
        },
    ),
    "cpu": Tier(
        agents=("ppo", "pqn"),
        torsos=("mlp", "gru", "lstm", "min_gru", "ffm", "linear_attention"),
        tasks=("memory-chain-5", "memory-chain-10", "memory-chain-30", "masked-cartpole"),
        seeds=3,
        steps={"memory-chain-5": 30_720, "memory-chain-10": 30_720, "memory-chain-30": 30_720,
               "masked-cartpole": 61_440},
        hidden_size=32,
        learning_rate={"ppo": 1e-3, "pqn": 1e-3, "r2d2": 1e-3},
        config={
            "ppo": {"num_envs": 16, "num_steps": 32},
            "pqn": {"num_envs": 16, "num_steps": 32, "epsilon_decay_steps": 10_000},
            "r2d2": {"num_envs": 16, "num_steps": 8, "buffer_size": 8_000, "learning_starts": 1_000,
                     "n_step": 3, "target_update_interval": 100, "epsilon_end": 0.05,
                     "epsilon_decay_steps": 15_000, "sequence_length": 16, "burn_in_length": 4},
        },
    ),
    "gpu": Tier(
        agents=("ppo", "pqn", "r2d2"),
        torsos=("mlp", *SEQUENCE_MODELS),
        tasks=tuple(TASKS),
        seeds=8,
        steps={
            # Multiples of 2**20, so every agent's update size divides them.
            "memory-chain-5": 1_048_576, "memory-chain-10": 1_048_576,
            "memory-chain-30": 2_097_152, "masked-cartpole": 5_242_880,
            "masked-pendulum": 5_242_880, "navix-doorkey-5x5": 5_242_880,
            "xminigrid-memory-s8": 10_485_760,
        },
        hidden_size=128,
        learning_rate={"ppo": 5e-4, "pqn": 5e-4, "r2d2": 5e-4},
        config={
            "ppo": {"num_envs": 64, "num_steps": 128, "num_minibatches": 8},
            "pqn": {"num_envs": 128, "num_steps": 32, "epsilon_decay_steps": 500_000},
            "r2d2": {"num_envs": 64, "num_steps": 8, "buffer_size": 100_000,
                     "learning_starts": 10_000, "n_step": 3, "target_update_interval": 500,
                     "epsilon_end": 0.05, "epsilon_decay_steps": 500_000,
                     "sequence_length": 40, "burn_in_length": 20},
        },
    ),
}  # fmt: skip
"""The grids: ``--tier smoke|cpu|gpu``."""


def cell_applies(agent: str, torso: str, env: Environment) -> str | None:
    """Why ``agent`` with ``torso`` cannot run on ``env`` (``None`` when it can)."""
    if agent in ("pqn", "r2d2") and not isinstance(env.action_space, Discrete):
        return "Q-learning needs discrete actions"
    if agent == "r2d2" and torso == "mlp":
        return "R2D2 replays recurrent state; it has no MLP form"
    return None


# ------------------------------------------------------------------ running


def run_cell(tier: Tier, agent_name: str, torso: str, task_name: str, seed: int = 0) -> dict:
    """Train one cell's seeds in one vmap and evaluate them; returns its record."""
    task = TASKS[task_name]
    spec = ALGORITHMS[agent_name]
    config = spec.config_class(**{**spec.defaults_for(torso), **tier.config[agent_name]})
    env, env_params = task.make(config.num_envs)
    agent = spec.build(config, env, env_params, torso, tier.hidden_size,
                       tier.learning_rate[agent_name], None)  # fmt: skip
    steps = tier.steps[task_name]
    keys = jax.random.split(jax.random.key(seed), 3 * tier.seeds).reshape(3, tier.seeds)

    def train(keys: jax.Array, states: Any) -> Any:
        return jax.vmap(agent.train, in_axes=(0, 0, None))(keys, states, steps)

    def evaluate(keys: jax.Array, states: Any) -> Any:
        return jax.vmap(lambda k, s: agent.evaluate(k, s, num_episodes=task.eval_episodes))(
            keys, states
        )

    states = jax.jit(jax.vmap(agent.init))(keys[0])
    start = time.perf_counter()
    compiled = jax.jit(train).lower(keys[1], states).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    states = jax.block_until_ready(compiled(keys[1], states))
    train_seconds = time.perf_counter() - start
    states = jax.jit(evaluate)(keys[2], states)
    returns = np.asarray(states.evaluation.returns).reshape(tier.seeds, -1)
    final = np.nanmean(returns, axis=1)
    env_steps = int(np.asarray(states.env_steps).reshape(-1)[0])
    return {
        "agent": agent_name,
        "torso": torso,
        "task": task_name,
        "seeds": tier.seeds,
        "env_steps": env_steps,
        "final": final.tolist(),
        "compile_seconds": compile_seconds,
        "train_seconds": train_seconds,
        "steps_per_second": tier.seeds * env_steps / train_seconds,
    }


def normalise(results: dict) -> dict[tuple[str, str, str], np.ndarray]:
    """Per cell, each seed's normalised score ``(return - random) / (maximum - random)``."""
    scores = {}
    for cell in results["cells"]:
        low = results["random"][cell["task"]]
        high = TASKS[cell["task"]].maximum
        scores[cell["agent"], cell["torso"], cell["task"]] = (np.asarray(cell["final"]) - low) / (
            high - low
        )
    return scores


def summaries(results: dict, n_resamples: int = 5_000) -> list[dict]:
    """Per agent and torso with every task done: IQM, median and mean of the normalised
    seed x task matrix, with 95% stratified bootstrap intervals."""
    scores = normalise(results)
    rows = []
    for agent in results["agents"]:
        for torso in results["torsos"]:
            tasks = [t for t in results["tasks"] if (agent, torso, t) in scores]
            if not tasks:
                continue
            matrix = np.stack([scores[agent, torso, t] for t in tasks], axis=1)
            metrics = aggregate(matrix, ("iqm", "median", "mean"), n_resamples=n_resamples)
            rows.append({"agent": agent, "torso": torso, "tasks": tasks, **metrics})
    return rows


def markdown(results: dict) -> str:
    """The per-cell table and the aggregate table as markdown."""
    scores = normalise(results)
    lines = [
        "| agent | torso | task | env steps/seed | final return (mean; per seed) | "
        "normalised (mean) | compile (s) | env steps/s (all seeds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in results["cells"]:
        final = np.asarray(cell["final"])
        per_seed = ", ".join(f"{x:.2f}" for x in final)
        normalised = scores[cell["agent"], cell["torso"], cell["task"]].mean()
        lines.append(
            f"| {cell['agent']} | {cell['torso']} | {cell['task']} | {cell['env_steps']:,d} | "
            f"{final.mean():.2f}; {per_seed} | {normalised:.2f} | "
            f"{cell['compile_seconds']:.1f} | {cell['steps_per_second']:,.0f} |"
        )
    lines += [
        "",
        "| agent | torso | tasks | IQM [95% CI] | median [95% CI] | mean [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for row in summaries(results):
        cells = " | ".join(
            f"{row[m].point:.2f} [{row[m].low:.2f}, {row[m].high:.2f}]"
            for m in ("iqm", "median", "mean")
        )
        lines.append(f"| {row['agent']} | {row['torso']} | {len(row['tasks'])} | {cells} |")
    random_line = ", ".join(f"{task} {value:.2f}" for task, value in results["random"].items())
    lines += ["", f"Random-policy returns (normalised 0): {random_line}."]
    return "\n".join(lines)


def plot(results: dict, out_path: str | Path) -> Path:
    """Each agent's per-torso IQM of normalised scores with its 95% interval, one panel
    per agent."""
    from matplotlib.figure import Figure

    rows = summaries(results)
    agents = [a for a in results["agents"] if any(r["agent"] == a for r in rows)]
    torsos = [t for t in results["torsos"] if any(r["torso"] == t for r in rows)]
    figure = Figure(figsize=(3.6 * len(agents), 0.45 * len(torsos) + 1.4), dpi=120,
                    layout="constrained")  # fmt: skip
    for column, agent in enumerate(agents):
        axes = figure.add_subplot(1, len(agents), column + 1)
        for row_index, torso in enumerate(torsos):
            match = [r for r in rows if r["agent"] == agent and r["torso"] == torso]
            if not match:
                continue
            iqm = match[0]["iqm"]
            color = "0.5" if torso == "mlp" else f"C{row_index % 10}"
            axes.barh(row_index, iqm.high - iqm.low, left=iqm.low, height=0.6, color=color,
                      alpha=0.6)  # fmt: skip
            axes.plot([iqm.point] * 2, [row_index - 0.3, row_index + 0.3], color="black")
        axes.set_yticks(range(len(torsos)), torsos if column == 0 else [""] * len(torsos))
        axes.set_xlim(-0.25, 1.05)
        axes.axvline(0.0, color="0.3", linewidth=0.8, linestyle=":")
        axes.set_title(agent.upper())
        axes.set_xlabel("IQM normalised return")
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(f"memory suite, tier {results['tier']}: IQM over seeds x tasks "
                    "(95% stratified bootstrap)")  # fmt: skip
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    return out_path


def run_tier(name: str, json_path: str | None) -> dict:
    """Run every applicable cell of tier ``name``, saving the results after each cell."""
    tier = TIERS[name]
    results: dict[str, Any] = {
        "tier": name,
        "agents": list(tier.agents),
        "torsos": list(tier.torsos),
        "tasks": list(tier.tasks),
        "random": {},
        "cells": [],
        "skipped": [],
    }
    start = time.perf_counter()
    for task_index, task_name in enumerate(tier.tasks):
        task = TASKS[task_name]
        results["random"][task_name] = random_return(task, jax.random.key(1_000 + task_index))
        env, _ = task.make(1)
        for agent in tier.agents:
            for torso in tier.torsos:
                reason = cell_applies(agent, torso, env)
                if reason is not None:
                    results["skipped"].append([agent, torso, task_name, reason])
                    continue
                cell = run_cell(tier, agent, torso, task_name)
                results["cells"].append(cell)
                final = np.asarray(cell["final"])
                print(f"{agent:>5} {torso:>17} {task_name:>20}: return {final.mean():7.2f} "
                      f"{np.round(final, 2).tolist()}  compile {cell['compile_seconds']:5.1f} s, "
                      f"{cell['steps_per_second']:8,.0f} steps/s  "
                      f"[{time.perf_counter() - start:6.0f} s]", flush=True)  # fmt: skip
                results["wall_seconds"] = time.perf_counter() - start
                if json_path:
                    Path(json_path).write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="smoke")
    parser.add_argument("--json", help="write the results here (after every cell)")
    parser.add_argument("--figure", help="draw the per-torso IQM figure here (e.g. .png)")
    parser.add_argument("--report", help="print the tables of a saved --json file; no training")
    parser.add_argument("--list", action="store_true", help="print the tier's grid and exit")
    args = parser.parse_args()
    if args.list:
        tier = TIERS[args.tier]
        print(f"agents {tier.agents}\ntorsos {tier.torsos}\nseeds {tier.seeds}")
        for task in tier.tasks:
            print(f"{task}: {tier.steps[task]:,d} steps/seed; {TASKS[task].note}")
        return
    if args.report:
        results = json.loads(Path(args.report).read_text())
    else:
        results = run_tier(args.tier, args.json)
    print(markdown(results))
    for agent, torso, task, reason in results["skipped"]:
        print(f"skipped {agent} {torso} {task}: {reason}")
    if args.figure:
        print(f"figure: {plot(results, args.figure)}")


if __name__ == "__main__":
    main()
