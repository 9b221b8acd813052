"""Soak: thousands of consecutive ``train``/``evaluate`` calls, watching memory,
threads and processes.

A week-long run or a notebook that trains and evaluates in a loop must not
grow: every call reuses the compiled programs, host callbacks keep no
per-call state, and ``close()`` stops every worker. This script measures:
resident memory (RSS, from /proc) after a warm-up and at the end, the
process's OS threads, and its child processes while the env is open and
after ``close()``.

    .venv/bin/python benchmarks/soak.py                         # 2,000 + 500 calls
    .venv/bin/python benchmarks/soak.py --jax-calls 300 --callback-calls 60 --json

Cases: PPO (MLP 16) on gymnax CartPole, 4 envs x 16 steps per call; PPO on
``pufferlib::CartPole-v1`` (gymnasium CartPole copies stepped by PufferLib's
Multiprocessing workers through the bridge), 4 envs x 16 steps per call.
Each call is one ``train`` of one update followed by one ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork

# Growth of resident memory after the warm-up that the soak tolerates. The heap of a
# JAX process moves by a few MB as malloc arenas and XLA's caches settle; a leak of one
# 16 KB object per call would add 32 MB over 2,000 calls and be caught.
RSS_GROWTH_BOUND_MB = 32.0
WARMUP_FRACTION = 0.1


def resident_mb() -> float:
    """This process's resident memory in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def os_threads() -> int:
    """This process's OS threads (Python's, JAX's and the callbacks')."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads in /proc/self/status")


def child_processes() -> list[int]:
    """Live processes whose parent is this one."""
    me, children = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            children.append(int(entry.name))
    return children


def _network(head: Any) -> Network:
    return Network(FeatureExtractor(MLP((16,))), MLP((16,)), head)


def soak(env_id: str, calls: int, **env_kwargs: Any) -> dict[str, Any]:
    """``calls`` rounds of train (one update) + evaluate; the figures of the run."""
    env, params = make(env_id, num_envs=4, **env_kwargs)
    config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=1)
    agent = PPO(config, env, params, _network(Categorical(2)), _network(VNetwork()),
                optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip
    state = agent.init(jax.random.key(0))
    warmup = max(1, int(calls * WARMUP_FRACTION))
    samples: list[tuple[int, float]] = []
    started = time.monotonic()
    for call in range(calls):
        key = jax.random.fold_in(jax.random.key(1), call)
        state = agent.train(key, state, config.steps_per_iteration)
        state = agent.evaluate(key, state, max_steps=600)
        jax.block_until_ready(state)
        if call + 1 == warmup:
            after_warmup = (resident_mb(), os_threads(), len(child_processes()))
        if (call + 1) % max(1, calls // 10) == 0:
            samples.append((call + 1, round(resident_mb(), 1)))
    end = (resident_mb(), os_threads(), len(child_processes()))
    elapsed = time.monotonic() - started
    env.close()
    time.sleep(0.5)  # let terminated workers be reaped
    return {
        "env": env_id,
        "calls": calls,
        "seconds": round(elapsed, 1),
        "rss_after_warmup_mb": round(after_warmup[0], 1),
        "rss_end_mb": round(end[0], 1),
        "rss_growth_mb": round(end[0] - after_warmup[0], 1),
        "rss_samples": samples,
        "threads_after_warmup": after_warmup[1],
        "threads_end": end[1],
        "children_while_open": end[2],
        "children_after_close": len(child_processes()),
        "threads_after_close": os_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    """Runs both cases and prints their figures (a table, or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax-calls", type=int, default=2000)
    parser.add_argument("--callback-calls", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    options = parser.parse_args(argv)
    results = [soak("gymnax::CartPole-v1", options.jax_calls)]
    puffer = {"backend": "Multiprocessing", "num_workers": 2}
    results.append(soak("pufferlib::CartPole-v1", options.callback_calls, **puffer))
    for result in results:
        if options.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"{result['env']}: {result['calls']} calls in {result['seconds']} s; RSS "
                f"{result['rss_after_warmup_mb']} -> {result['rss_end_mb']} MB "
                f"(+{result['rss_growth_mb']} MB, bound {RSS_GROWTH_BOUND_MB}); threads "
                f"{result['threads_after_warmup']} -> {result['threads_end']} "
                f"({result['threads_after_close']} after close); child processes "
                f"{result['children_while_open']} open, {result['children_after_close']} "
                f"after close; RSS samples {result['rss_samples']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
