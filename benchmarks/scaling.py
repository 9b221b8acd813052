"""Data-parallel scaling of every agent: env steps per second against device count.

Each agent trains on gymnax CartPole-v1 (SAC: Pendulum-v1) with a fixed global batch (``--envs``
env copies, MLP 64 x 64) on one device (``num_devices=None``) and split over
1, 2, 4, ... devices (the config's ``num_devices``):

- PPO: 128 steps per update, 4 epochs x 4 minibatches;
- PQN: 128 steps per update, 4 epochs x 4 minibatches, LayerNorm torso;
- DQN: 8 steps per iteration, then 2 gradient steps on 256 sampled
  transitions; a 65,536-step replay buffer split over the devices;
- R2D2: GRU(64) torso, 8 steps per iteration, then 2 prioritised gradient
  steps on 64 sequences of 10 + 20 + 5 - 1 steps; replay and priorities
  split over the devices, the sum tree replicated;
- SAC: 8 steps per iteration, then 2 gradient steps on 256 sampled
  transitions, twin critic; replay split over the devices.

Each row reports the compile time and the env steps per second of the
compiled call, and the speed-up over one device.

On a CPU-only machine the devices are simulated: the script sets
``XLA_FLAGS=--xla_force_host_platform_device_count`` to the largest count
before jax starts. Simulated devices share the machine's cores, so there the
table measures the partitioning overhead, not a speed-up; on a multi-GPU
machine it measures real scaling.

    .venv/bin/python benchmarks/scaling.py                        # 1, 2, 4 devices, every agent
    .venv/bin/python benchmarks/scaling.py --agents dqn --devices 1,2,4,8 --envs 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

AGENTS = ("ppo", "pqn", "dqn", "r2d2", "sac")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default=",".join(AGENTS), help="agents, comma separated")
    parser.add_argument("--devices", default="1,2,4", help="device counts, comma separated")
    parser.add_argument("--envs", type=int, default=16, help="global env copies (all devices)")
    parser.add_argument("--steps", type=int, default=131_072, help="env steps per train call")
    args = parser.parse_args()
    unknown = set(args.agents.split(",")) - set(AGENTS)
    if unknown:
        parser.error(f"unknown agents {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    return args


def main() -> None:
    args = parse_args()
    counts = [int(n) for n in args.devices.split(",")]
    if "jax" in sys.modules:
        raise RuntimeError("benchmarks/scaling.py must set XLA_FLAGS before jax is imported.")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        # Only affects the CPU platform; real accelerators are counted as they are.
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={max(counts)}"

    import flax.linen as nn
    import jax
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
        Network,
        SquashedGaussian,
        TwinContinuousQNetwork,
        VNetwork,
    )

    def mlp(head: nn.Module) -> Network:
        return Network(
            FeatureExtractor(MLP((64,), activation=nn.tanh)), MLP((64,), activation=nn.tanh), head
        )

    def layer_norm_q_network() -> Network:
        def block() -> nn.Module:
            return nn.Sequential([Dense(64), nn.LayerNorm(), nn.relu])

        return Network(FeatureExtractor(block()), block(), DiscreteQNetwork(2))

    def build(name: str, num_devices: int | None):
        if name == "sac":
            env, env_params = make("gymnax::Pendulum-v1", num_envs=args.envs)
            config = SACConfig(num_envs=args.envs, num_steps=8, gradient_steps=2,
                               batch_size=256, buffer_size=65_536 // args.envs * args.envs,
                               learning_starts=1_000, num_devices=num_devices)  # fmt: skip
            return SAC(config, env, env_params, mlp(SquashedGaussian(1)),
                       mlp(TwinContinuousQNetwork((64,))), optax.adam(3e-4),
                       optax.adam(3e-4))  # fmt: skip
        env, env_params = make("gymnax::CartPole-v1", num_envs=args.envs)
        if name == "r2d2":
            config = R2D2Config(num_envs=args.envs, num_steps=8, gradient_steps=2,
                                batch_size=64, buffer_size=65_536 // args.envs * args.envs,
                                learning_starts=1_000, sequence_length=20, burn_in_length=10,
                                num_devices=num_devices)  # fmt: skip
            network = Network(FeatureExtractor(MLP((64,), activation=nn.tanh)), GRU(64),
                              DiscreteQNetwork(2))  # fmt: skip
            return R2D2(config, env, env_params, network, optax.adam(2.5e-4))
        if name == "ppo":
            optimizer = optax.adam(2.5e-4, eps=1e-5)
            config = PPOConfig(num_envs=args.envs, num_steps=128, num_minibatches=4,
                               update_epochs=4, num_devices=num_devices)  # fmt: skip
            return PPO(config, env, env_params, mlp(Categorical(2)), mlp(VNetwork()),
                       optimizer, optimizer)  # fmt: skip
        if name == "pqn":
            config = PQNConfig(num_envs=args.envs, num_steps=128, num_minibatches=4,
                               update_epochs=4, num_devices=num_devices)  # fmt: skip
            return PQN(config, env, env_params, layer_norm_q_network(), optax.adam(2.5e-4))
        config = DQNConfig(num_envs=args.envs, num_steps=8, gradient_steps=2, batch_size=256,
                           buffer_size=65_536 // args.envs * args.envs, learning_starts=1_000,
                           num_devices=num_devices)  # fmt: skip
        return DQN(config, env, env_params, layer_norm_q_network(), optax.adam(2.5e-4))

    def rate(name: str, num_devices: int | None) -> tuple[float, float]:
        """(compile seconds, env steps per second) of one compiled train call."""
        agent = build(name, num_devices)
        state = agent.init(jax.random.key(0))
        start = time.perf_counter()
        jax.block_until_ready(agent.train(jax.random.key(1), state, args.steps))
        first = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(agent.train(jax.random.key(2), state, args.steps))
        seconds = time.perf_counter() - start
        return first - seconds, args.steps / seconds

    platform = jax.devices()[0].platform
    simulated = " (simulated)" if platform == "cpu" else ""
    print(f"jax {jax.__version__}; {jax.device_count()} {platform} device(s){simulated}; "
          f"{args.envs} envs; {args.steps} env steps per call; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| agent | devices | compile (s) | env steps/s | x one device |")
    print("|---|---|---|---|---|")
    for name in args.agents.split(","):
        compile_seconds, baseline = rate(name, None)
        print(f"| {name.upper()} | 1 (num_devices=None) | {compile_seconds:.1f} | "
              f"{baseline:,.0f} | 1.00 |", flush=True)  # fmt: skip
        for count in counts:
            compile_seconds, steps_per_second = rate(name, count)
            print(f"| {name.upper()} | {count} | {compile_seconds:.1f} | "
                  f"{steps_per_second:,.0f} | {steps_per_second / baseline:.2f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
