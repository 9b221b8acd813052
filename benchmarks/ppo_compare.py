"""Memorax PPO against the single-file PPO and rejax, interleaved (a benchmark, not a test).

A noisy machine drifts by more than the gap between the two programs, so one
run of ``benchmarks/ppo.py`` and one of ``benchmarks/ppo_reference.py`` can
not be compared. This compiles both (1 seed and N vmapped seeds, MLP torso,
the same settings), then alternates calls of the compiled programs and
reports the median rate of each and the ratio of the medians.

    .venv/bin/python benchmarks/ppo_compare.py --steps 131072 --rounds 5

With ``--rejax-python`` (an interpreter of a separate environment with rejax:
see ``rejax_worker.py``), rejax's PPO with the same settings
(:data:`REJAX_PPO`) is a third program in the rotation, run by a worker
process under that interpreter.
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
import rejax_worker

# benchmarks/ppo.py's settings in rejax's terms.
REJAX_PPO = {
    "env": "CartPole-v1",
    "num_envs": ppo.NUM_ENVS,
    "num_steps": ppo.NUM_STEPS,
    "num_epochs": 4,
    "num_minibatches": 4,
    "learning_rate": 2.5e-4,
    "max_grad_norm": 0.5,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_eps": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "agent_kwargs": {"activation": "tanh", "hidden_layer_sizes": [64, 64]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=131_072, help="env steps per seed and call")
    parser.add_argument("--seeds", type=int, default=8, help="seeds in the vmapped run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating calls of each")
    parser.add_argument(
        "--rejax-python",
        help="an interpreter with rejax installed (see rejax_worker.py): adds rejax's PPO",
    )
    args = parser.parse_args()
    per_update = ppo.NUM_ENVS * ppo.NUM_STEPS
    steps = args.steps // per_update * per_update
    print(f"jax {jax.__version__} on {jax.default_backend()}; {steps} env steps per seed and "
          f"call; {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} on "
          f"{len(os.sched_getaffinity(0))} usable cores")  # fmt: skip
    print("| seeds | program | compile (s) | median env steps/s | range | Memorax / this |")
    print("|---|---|---|---|---|---|")
    for num_seeds in (1, args.seeds):
        # Each program: (compile seconds, a call returning the wall seconds of one run).
        programs = {}
        for name, (seconds, call) in (
            ("Memorax PPO", ppo.compile_train(ppo.make_agent("mlp"), num_seeds, steps)),
            ("single-file PPO", ppo_reference.compile_train(num_seeds, steps // per_update)),
        ):
            programs[name] = (seconds, lambda call=call: ppo_reference.timed(call))
        worker = None
        if args.rejax_python:
            worker = rejax_worker.Worker(args.rejax_python, "ppo", REJAX_PPO, num_seeds, steps)
            programs["rejax PPO"] = (worker.compile_seconds, worker)
        rates: dict[str, list[float]] = {name: [] for name in programs}
        for _, run in programs.values():
            run()  # a warm call first: page faults, thread pool start-up
        for _ in range(args.rounds):
            for name, (_, run) in programs.items():
                rates[name].append(num_seeds * steps / run())
        if worker is not None:
            worker.close()
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, (compile_seconds, _) in programs.items():
            low, high = min(rates[name]), max(rates[name])
            # Memorax against each yardstick: how many times its rate.
            shown = f"{medians['Memorax PPO'] / medians[name]:.2f}" if name != "Memorax PPO" else ""
            print(f"| {num_seeds} | {name} | {compile_seconds:.1f} | {medians[name]:,.0f} | "
                  f"{low:,.0f} to {high:,.0f} | {shown} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
