"""Stable-Baselines3 agents as yardsticks, each in a worker process under a Python with torch.

Stable-Baselines3 (pip ``stable-baselines3``) is a peer, not a dependency, and
it pulls torch, so it lives in a virtual environment of its own::

    uv venv /tmp/sb3 && VIRTUAL_ENV=/tmp/sb3 uv pip install stable-baselines3 gymnasium

``sb3_compare.py`` starts this file under that interpreter (its
``--sb3-python``) through :class:`Worker`. The worker answers each ``run``
line on stdin by building a fresh agent (seed 0) over ``num_envs`` gymnasium
copies (SB3's ``DummyVecEnv``), training it for the given env steps and
printing the wall seconds of ``learn``; each ``eval`` line with the mean
deterministic return of 32 episodes of the last trained agent. Model
construction is outside the timed part, as Memorax's ``init`` is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from worker_process import LineWorker

ALGORITHMS = ("dqn", "ppo", "sac")


def build(algo: str, env_id: str, num_envs: int, config: dict[str, Any]) -> Any:
    """SB3's ``algo`` on ``num_envs`` copies of ``env_id``, MLP 64 x 64, on the CPU."""
    import stable_baselines3
    import torch
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(env_id, n_envs=num_envs, seed=0)
    agent_class = getattr(stable_baselines3, algo.upper())
    policy_kwargs = {"net_arch": [64, 64], "activation_fn": torch.nn.Tanh}
    return agent_class(
        "MlpPolicy", env, policy_kwargs=policy_kwargs, seed=0, device="cpu", **config
    )


class Worker(LineWorker):
    """An SB3 agent in a worker process under another interpreter (see ``worker_process``)."""

    def __init__(
        self, python: str, algo: str, env_id: str, num_envs: int, num_steps: int,
        config: dict[str, Any],
    ) -> None:  # fmt: skip
        # Its greeting ("ready") says torch and SB3 are imported.
        super().__init__(python, __file__, algo, env_id, str(num_envs), str(num_steps),
                         json.dumps(config))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=ALGORITHMS)
    parser.add_argument("env_id")
    parser.add_argument("num_envs", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("config", type=json.loads)
    args = parser.parse_args()
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    print("ready", flush=True)
    agent = None
    for line in sys.stdin:
        if line.strip() == "eval":
            eval_env = make_vec_env(args.env_id, n_envs=1, seed=1)
            mean, _ = evaluate_policy(agent, eval_env, n_eval_episodes=32, deterministic=True)
            print(float(mean), flush=True)
            continue
        agent = build(args.algo, args.env_id, args.num_envs, args.config)
        start = time.perf_counter()
        agent.learn(total_timesteps=args.steps)
        print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main()
