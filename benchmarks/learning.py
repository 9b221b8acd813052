"""Full-budget learning runs: does each agent learn what it should, and how fast?

Each run trains a few seeds (in one ``jax.vmap`` for JAX-native envs),
evaluates the deterministic policy after every chunk of env steps, and
prints the return curve, the final return per seed, wall time (compile
included) and env steps per second. Results are recorded in
``benchmarks/README.md``.

    .venv/bin/python benchmarks/learning.py --list
    .venv/bin/python benchmarks/learning.py ppo-cartpole ppo-memory-chain-gru

To add an agent, add functions that build it and register :class:`Run` s in
``RUNS``; anything with ``init / train / evaluate`` in the PPO call forms works.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax

from memorax.algorithms import (
    DQN,
    PPO,
    PQN,
    R2D2,
    SAC,
    DQNConfig,
    PPOConfig,
    PQNConfig,
    R2D2Config,
    SACConfig,
)
from memorax.envs import make
from memorax.networks import (
    GRU,
    MLP,
    Categorical,
    Dense,
    DiscreteQNetwork,
    FeatureExtractor,
    Gaussian,
    LayerNorm,
    Network,
    SquashedGaussian,
    TwinContinuousQNetwork,
    VNetwork,
)


@dataclasses.dataclass(frozen=True)
class Run:
    """One learning benchmark.

    Attributes:
        name: command-line name.
        build: returns a fresh agent (``init / train / evaluate``).
        num_seeds: seeds trained together (1 for callback envs: no vmap).
        num_steps: env steps per seed.
        eval_every: env steps between evaluations (a multiple of one update).
        eval_episodes: deterministic episodes per env copy at each evaluation.
        goal: what the issue asks for, printed beside the result.
        passed: the check of ``goal`` on the final per-seed returns.
    """

    name: str
    build: Callable[[], Any]
    num_seeds: int
    num_steps: int
    eval_every: int
    eval_episodes: int
    goal: str
    passed: Callable[[np.ndarray], bool]


# ------------------------------------------------------------------ PPO


def _mlp_network(head: nn.Module, width: int = 64) -> Network:
    return Network(
        FeatureExtractor(MLP((width,), activation=nn.tanh)), MLP((width,), activation=nn.tanh), head
    )


def _gru_network(head: nn.Module, width: int = 64) -> Network:
    return Network(FeatureExtractor(MLP((width,), activation=nn.tanh)), GRU(width), head)


def ppo_cartpole(env_id: str = "gymnax::CartPole-v1") -> PPO:
    """PureJaxRL's CartPole settings (4 envs x 128 steps, 4 x 4 minibatches), lr 1e-3."""
    env, env_params = make(env_id, num_envs=4)
    config = PPOConfig(num_envs=4, num_steps=128)
    optimizer = optax.adam(1e-3, eps=1e-5)
    return PPO(
        config, env, env_params, _mlp_network(Categorical(2)), _mlp_network(VNetwork()),
        optimizer, optimizer,
    )  # fmt: skip


def ppo_memory_chain(torso: str) -> PPO:
    """MemoryChain-bsuite, memory length 10: the context must be recalled 10 steps later."""
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=16, memory_length=10)
    config = PPOConfig(num_envs=16, num_steps=32)
    build = _gru_network if torso == "gru" else _mlp_network
    optimizer = optax.adam(5e-4, eps=1e-5)
    return PPO(
        config, env, env_params, build(Categorical(2), 32), build(VNetwork(), 32),
        optimizer, optimizer,
    )  # fmt: skip


def ppo_pendulum() -> PPO:
    """Continuous control: Gaussian policy, short horizon (gamma 0.9), 10 epochs, no value clip."""
    env, env_params = make("gymnax::Pendulum-v1", num_envs=8)
    config = PPOConfig(
        num_envs=8, num_steps=256, gamma=0.9, num_minibatches=8, update_epochs=10,
        entropy_coefficient=0.0, clip_value_loss=False,
    )  # fmt: skip
    optimizer = optax.adam(1e-3, eps=1e-5)
    return PPO(
        config, env, env_params, _mlp_network(Gaussian(1)), _mlp_network(VNetwork()),
        optimizer, optimizer,
    )  # fmt: skip


# ------------------------------------------------------------- value-based


def _layer_norm_q_network(num_actions: int, width: int = 64) -> Network:
    """Dense -> LayerNorm -> ReLU twice, then a Q head (PQN needs the layer norm)."""

    def block() -> nn.Module:
        return nn.Sequential([Dense(width), LayerNorm(), nn.relu])

    return Network(FeatureExtractor(block()), block(), DiscreteQNetwork(num_actions))


def pqn_cartpole(env_id: str = "gymnax::CartPole-v1") -> PQN:
    """PQN on CartPole: 32 envs x 16 steps, Q(lambda=0.8), 8 minibatches, no target network."""
    env, env_params = make(env_id, num_envs=32)
    config = PQNConfig(num_envs=32, num_steps=16, q_lambda=0.8, num_minibatches=8,
                       epsilon_decay_steps=30_000)  # fmt: skip
    return PQN(config, env, env_params, _layer_norm_q_network(2), optax.adam(5e-4))


def dqn_cartpole() -> DQN:
    """Double DQN on CartPole: 3-step targets, target copy every 250 gradient steps."""
    env, env_params = make("gymnax::CartPole-v1", num_envs=8)
    config = DQNConfig(
        num_envs=8, num_steps=4, gradient_steps=2, batch_size=128, buffer_size=40_000,
        learning_starts=2_000, target_update_interval=250, epsilon_decay_steps=30_000, n_step=3,
    )  # fmt: skip
    return DQN(config, env, env_params, _layer_norm_q_network(2), optax.adam(5e-4))


def r2d2_memory_chain() -> R2D2:
    """MemoryChain-bsuite, memory length 10, GRU: stored-state replay of 16-step sequences
    after a 4-step burn-in, 3-step double-Q targets on rescaled values, prioritised."""
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=16, memory_length=10)
    config = R2D2Config(
        num_envs=16, num_steps=8, gradient_steps=2, batch_size=32, buffer_size=8_000,
        learning_starts=1_000, gamma=0.99, n_step=3, target_update_interval=100,
        epsilon_end=0.05, epsilon_decay_steps=15_000, sequence_length=16, burn_in_length=4,
    )  # fmt: skip
    return R2D2(config, env, env_params, _gru_network(DiscreteQNetwork(2), 32), optax.adam(1e-3))


def sac_pendulum() -> SAC:
    """SAC on Pendulum as in the CI learning check: 4 env copies, one gradient step per env
    step, 64-unit MLPs, batch 128 (256-unit networks are ~16x the work on a CPU)."""
    env, env_params = make("gymnax::Pendulum-v1", num_envs=4)
    config = SACConfig(num_envs=4, gradient_steps=4, batch_size=128, buffer_size=100_000,
                       learning_starts=1_000)  # fmt: skip

    def network(head: nn.Module) -> Network:
        return Network(FeatureExtractor(MLP((64,))), MLP((64,)), head)

    actor, critic = network(SquashedGaussian(1)), network(TwinContinuousQNetwork((64,)))
    return SAC(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def cli_memory_chain(algo: str, torso: str) -> Any:
    """An agent exactly as ``memorax train --algo ALGO --torso TORSO --env
    gymnax::MemoryChain-bsuite --env-arg memory_length=5`` builds it (the CLI's defaults,
    64 units, learning rate 2.5e-4)."""
    from memorax.cli.agents import ALGORITHMS

    spec = ALGORITHMS[algo]
    config = spec.config_class(**spec.defaults_for(torso))
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=config.num_envs,
                           memory_length=5)  # fmt: skip
    return spec.build(config, env, env_params, torso, 64, 2.5e-4, None)


def _memory_chain_runs(algo: str, num_steps: int) -> list[Run]:
    """The CLI's ``algo`` on MemoryChain (memory length 5) with a GRU, and its MLP control."""
    every = num_steps // 10
    return [
        Run(f"{algo}-memory-chain-gru", lambda: cli_memory_chain(algo, "gru"), 4, num_steps,
            every, 8, "mean >= 0.8", lambda r: r.mean() >= 0.8),
        Run(f"{algo}-memory-chain-mlp", lambda: cli_memory_chain(algo, "mlp"), 4, num_steps,
            every, 8, "near 0 (cannot remember)", lambda r: abs(r.mean()) <= 0.3),
    ]  # fmt: skip


RUNS = {
    run.name: run
    for run in (
        Run("ppo-cartpole", ppo_cartpole, 4, 512_000, 51_200, 1,
            "mean >= 450, no seed < 350", lambda r: r.mean() >= 450 and r.min() >= 350),
        Run("ppo-memory-chain-gru", lambda: ppo_memory_chain("gru"), 4, 204_800, 20_480, 8,
            "mean >= 0.8", lambda r: r.mean() >= 0.8),
        Run("ppo-memory-chain-mlp", lambda: ppo_memory_chain("mlp"), 4, 204_800, 20_480, 8,
            "near 0 (cannot remember)", lambda r: abs(r.mean()) <= 0.2),
        Run("ppo-pendulum", ppo_pendulum, 4, 1_003_520, 100_352, 1,
            "mean >= -300", lambda r: r.mean() >= -300),
        Run("ppo-gymnasium-cartpole", lambda: ppo_cartpole("gymnasium::CartPole-v1"), 1,
            512_000, 51_200, 1, ">= 400", lambda r: r.mean() >= 400),
        Run("pqn-cartpole", pqn_cartpole, 4, 512_000, 51_200, 1,
            "mean >= 450", lambda r: r.mean() >= 450),
        Run("pqn-gymnasium-cartpole", lambda: pqn_cartpole("gymnasium::CartPole-v1"), 1,
            512_000, 51_200, 1, ">= 450", lambda r: r.mean() >= 450),
        Run("dqn-cartpole", dqn_cartpole, 4, 512_000, 51_200, 1,
            "mean >= 450", lambda r: r.mean() >= 450),
        Run("r2d2-memory-chain-gru", r2d2_memory_chain, 4, 102_400, 10_240, 8,
            "mean >= 0.8", lambda r: r.mean() >= 0.8),
        Run("sac-pendulum", sac_pendulum, 4, 100_000, 10_000, 1,
            "mean >= -250", lambda r: r.mean() >= -250),
        *_memory_chain_runs("dqn", 102_400),
        *_memory_chain_runs("sac", 102_400),
        *_memory_chain_runs("pqn", 102_400),
    )
}  # fmt: skip


# ------------------------------------------------------------------ runner


def run(spec: Run) -> dict[str, Any]:
    """Train ``spec``'s seeds, evaluating every ``eval_every`` steps; prints the curve."""
    agent = spec.build()
    seeds = spec.num_seeds
    start = time.perf_counter()
    if seeds == 1:
        init, train = agent.init, agent.train

        def evaluate(key, state):
            return agent.evaluate(key, state, num_episodes=spec.eval_episodes)

        def split(key):
            return key
    else:
        init = jax.vmap(agent.init)
        train = jax.jit(jax.vmap(agent.train, in_axes=(0, 0, None)), static_argnums=2)
        evaluate = jax.jit(
            jax.vmap(lambda k, s: agent.evaluate(k, s, num_episodes=spec.eval_episodes))
        )

        def split(key):
            return jax.random.split(key, seeds)

    key = jax.random.key(0)
    key, init_key = jax.random.split(key)
    state = init(split(init_key))
    curve = []
    for _ in range(spec.num_steps // spec.eval_every):
        key, train_key, eval_key = jax.random.split(key, 3)
        state = train(split(train_key), state, spec.eval_every)
        state = evaluate(split(eval_key), state)
        returns = np.nanmean(np.asarray(state.evaluation.returns).reshape(seeds, -1), axis=1)
        steps = int(np.asarray(state.env_steps).reshape(-1)[0])
        curve.append((steps, returns))
        print(f"  {spec.name} {steps:>9,d} steps: return {returns.mean():8.2f} "
              f"(per seed {np.round(returns, 2).tolist()})", flush=True)  # fmt: skip
    wall = time.perf_counter() - start
    final = curve[-1][1]
    return {
        "name": spec.name,
        "seeds": seeds,
        "steps": curve[-1][0],
        "final": final,
        "wall": wall,
        "steps_per_second": seeds * curve[-1][0] / wall,
        "goal": spec.goal,
        "passed": bool(spec.passed(final)),
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    args = parser.parse_args()
    if args.list:
        for spec in RUNS.values():
            print(f"{spec.name}: {spec.num_seeds} seeds x {spec.num_steps:,d} steps; {spec.goal}")
        return
    unknown = [name for name in args.runs if name not in RUNS]
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {sorted(RUNS)}")
    results = [run(RUNS[name]) for name in (args.runs or RUNS)]
    print("| run | seeds | env steps/seed | final return (mean; per seed) | goal | met | "
          "wall (s, incl. compile) | env steps/s (all seeds) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        per_seed = ", ".join(f"{x:.2f}" for x in r["final"])
        print(f"| {r['name']} | {r['seeds']} | {r['steps']:,d} | {r['final'].mean():.2f}; "
              f"{per_seed} | {r['goal']} | {'yes' if r['passed'] else 'NO'} | {r['wall']:.0f} | "
              f"{r['steps_per_second']:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
