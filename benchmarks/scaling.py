"""PPO data-parallel scaling: env steps per second against device count (a benchmark).

Trains PPO on gymnax CartPole-v1 with a fixed global batch (``--envs`` env
copies x 128 steps per update, 4 epochs x 4 minibatches, MLP 64 x 64) on one
device (``num_devices=None``) and split over 1, 2, 4, ... devices
(``PPOConfig.num_devices``). Each row reports the compile time and the env
steps per second of the compiled call, and the speed-up over one device.

On a CPU-only machine the devices are simulated: the script sets
``XLA_FLAGS=--xla_force_host_platform_device_count`` to the largest count
before jax starts. Simulated devices share the machine's cores, so there the
table measures the partitioning overhead, not a speed-up; on a multi-GPU
machine it measures real scaling.

    .venv/bin/python benchmarks/scaling.py                        # 1, 2, 4 devices
    .venv/bin/python benchmarks/scaling.py --devices 1,2,4,8 --envs 64 --steps 1048576
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2,4", help="device counts, comma separated")
    parser.add_argument("--envs", type=int, default=16, help="global env copies (all devices)")
    parser.add_argument("--steps", type=int, default=131_072, help="env steps per train call")
    return parser.parse_args()


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

    from memorax.algorithms import PPO, PPOConfig
    from memorax.envs import make
    from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork

    def network(head: nn.Module) -> Network:
        return Network(
            FeatureExtractor(MLP((64,), activation=nn.tanh)), MLP((64,), activation=nn.tanh), head
        )

    def rate(num_devices: int | None) -> tuple[float, float]:
        """(compile seconds, env steps per second) of one compiled train call."""
        env, env_params = make("gymnax::CartPole-v1", num_envs=args.envs)
        config = PPOConfig(
            num_envs=args.envs, num_steps=128, num_minibatches=4, update_epochs=4,
            num_devices=num_devices,
        )  # fmt: skip
        optimizer = optax.adam(2.5e-4, eps=1e-5)
        agent = PPO(config, env, env_params, network(Categorical(2)), network(VNetwork()),
                    optimizer, optimizer)  # fmt: skip
        state = agent.init(jax.random.key(0))
        start = time.perf_counter()
        jax.block_until_ready(agent.train(jax.random.key(1), state, args.steps))
        first = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(agent.train(jax.random.key(2), state, args.steps))
        seconds = time.perf_counter() - start
        return first - seconds, args.steps / seconds

    platform = jax.devices()[0].platform
    print(f"jax {jax.__version__}; {jax.device_count()} {platform} device(s)"
          f"{' (simulated)' if platform == 'cpu' else ''}; {args.envs} envs x 128 steps per "
          f"update; {args.steps} env steps per call; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| devices | compile (s) | env steps/s | x one device |")
    print("|---|---|---|---|")
    compile_seconds, baseline = rate(None)
    print(f"| 1 (num_devices=None) | {compile_seconds:.1f} | {baseline:,.0f} | 1.00 |", flush=True)
    for count in counts:
        compile_seconds, steps_per_second = rate(count)
        print(f"| {count} | {compile_seconds:.1f} | {steps_per_second:,.0f} | "
              f"{steps_per_second / baseline:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
