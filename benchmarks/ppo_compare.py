"""Memorax PPO against the single-file PPO, interleaved (a benchmark, not a test).

A noisy machine drifts by more than the gap between the two programs, so one
run of ``benchmarks/ppo.py`` and one of ``benchmarks/ppo_reference.py`` can
not be compared. This compiles both (1 seed and N vmapped seeds, MLP torso,
the same settings), then alternates calls of the compiled programs and
reports the median rate of each and the ratio of the medians.

    .venv/bin/python benchmarks/ppo_compare.py --steps 131072 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ppo
import ppo_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=131_072, help="env steps per seed and call")
    parser.add_argument("--seeds", type=int, default=8, help="seeds in the vmapped run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating calls of each")
    args = parser.parse_args()
    per_update = ppo.NUM_ENVS * ppo.NUM_STEPS
    steps = args.steps // per_update * per_update
    print(f"jax {jax.__version__} on {jax.default_backend()}; {steps} env steps per seed and "
          f"call; {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} on "
          f"{len(os.sched_getaffinity(0))} usable cores")  # fmt: skip
    print("| seeds | program | compile (s) | median env steps/s | range | Memorax / single-file |")
    print("|---|---|---|---|---|---|")
    for num_seeds in (1, args.seeds):
        programs = {
            "Memorax PPO": ppo.compile_train(ppo.make_agent("mlp"), num_seeds, steps),
            "single-file PPO": ppo_reference.compile_train(num_seeds, steps // per_update),
        }
        rates: dict[str, list[float]] = {name: [] for name in programs}
        for _, call in programs.values():
            ppo_reference.timed(call)  # a warm call first: page faults, thread pool start-up
        for _ in range(args.rounds):
            for name, (_, call) in programs.items():
                rates[name].append(num_seeds * steps / ppo_reference.timed(call))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        ratio = medians["Memorax PPO"] / medians["single-file PPO"]
        for name, (compile_seconds, _) in programs.items():
            low, high = min(rates[name]), max(rates[name])
            shown = f"{ratio:.2f}" if name == "Memorax PPO" else ""
            print(f"| {num_seeds} | {name} | {compile_seconds:.1f} | {medians[name]:,.0f} | "
                  f"{low:,.0f} to {high:,.0f} | {shown} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
