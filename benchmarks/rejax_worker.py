"""rejax's agents as yardsticks, each in a worker process under rejax's own interpreter.

rejax (pip ``rejax``) is a peer, not a dependency, and rejax 0.1.3 reads
gymnax's 0.0.x step API while Memorax needs gymnax >= 1.0, so it lives in a
virtual environment of its own::

    uv venv /tmp/peers && VIRTUAL_ENV=/tmp/peers uv pip install rejax "gymnax<1" jax==0.10.2

``ppo_compare.py`` and ``peers.py`` start this file under that interpreter
(their ``--rejax-python``) through :class:`Worker`: the worker builds the named
rejax agent from a JSON config, compiles its ``train`` once, then answers each
``run`` line on stdin with the wall seconds of one compiled call and each
``eval`` line with the mean return of 128 episodes of the last trained state
(rejax's own evaluation), so its calls interleave with Memorax's in one window.
rejax's periodic evaluation is replaced by a no-op inside ``train`` (Memorax's
train does not evaluate either); its ``train`` initialises its state inside
the call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from worker_process import LineWorker


def compile_train(algo: str, config: dict[str, Any], num_seeds: int, num_steps: int):
    """(compile seconds, a zero-argument call, the rejax agent) for ``num_steps`` env steps
    per seed, 1 seed or vmapped over seeds."""
    import jax
    import jax.numpy as jnp
    import rejax

    agent = rejax.get_algo(algo).create(
        **config, total_timesteps=num_steps, eval_freq=num_steps, skip_initial_evaluation=True
    )
    evaluate = agent.eval_callback
    agent = agent.replace(eval_callback=lambda algo, state, key: jnp.zeros(()))
    train = agent.train
    if num_seeds == 1:
        keys = jax.random.key(0)
    else:
        train, keys = jax.vmap(train), jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    return (
        time.perf_counter() - start,
        lambda: compiled(keys),
        agent.replace(eval_callback=evaluate),
    )


class Worker(LineWorker):
    """A rejax agent in a worker process under another interpreter (see ``worker_process``)."""

    def __init__(
        self, python: str, algo: str, config: dict[str, Any], num_seeds: int, num_steps: int
    ) -> None:
        super().__init__(python, __file__, algo, json.dumps(config), str(num_seeds), str(num_steps))
        self.compile_seconds = float(self.greeting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo")
    parser.add_argument("config", type=json.loads)
    parser.add_argument("seeds", type=int)
    parser.add_argument("steps", type=int)
    args = parser.parse_args()
    import jax

    compile_seconds, call, agent = compile_train(args.algo, args.config, args.seeds, args.steps)
    print(compile_seconds, flush=True)
    state = None
    for line in sys.stdin:
        if line.strip() == "eval":
            _, returns = agent.eval_callback(agent, state, jax.random.key(1))
            print(float(returns.mean()), flush=True)
            continue
        start = time.perf_counter()
        state, _ = jax.block_until_ready(call())
        print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main()
