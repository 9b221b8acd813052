"""One process of a two-process data-parallel PPO run on the CPU (``jax.distributed``).

``test_multiprocess.py`` starts two of these, each with two simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), and compares what they write
with the same training on one device. Usage::

    python multiprocess_worker.py PROCESS_ID COORDINATOR_PORT OUTPUT_DIR

Not a test module: it defines the shared agent and, run as a script, trains it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork

NUM_PROCESSES = 2
NUM_ENVS = 8
CONFIG = PPOConfig(num_envs=NUM_ENVS, num_steps=16, num_minibatches=2, update_epochs=2)
TRAIN_STEPS = 2 * CONFIG.steps_per_update


def make_agent(num_devices: int | None) -> PPO:
    """The tiny feed-forward CartPole PPO both the workers and the reference train."""

    def network(head: nn.Module) -> Network:
        return Network(
            FeatureExtractor(MLP((16,), activation=nn.tanh)), MLP((16,), activation=nn.tanh), head
        )

    config = PPOConfig(**{**CONFIG.__dict__, "num_devices": num_devices})
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    return PPO(config, env, env_params, network(Categorical(2)), network(VNetwork()),
               optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip


def trained(num_devices: int | None) -> dict[str, np.ndarray]:
    """Train from fixed keys; what to compare, as host arrays (env-axis arrays gathered
    from every process, replicated ones read from this process's first device)."""
    from jax.experimental import multihost_utils

    agent = make_agent(num_devices)
    state = agent.train(jax.random.key(1), agent.init(jax.random.key(0)), TRAIN_STEPS)
    result = {
        f"{name}/{index}": np.asarray(leaf.addressable_data(0))
        for name in ("actor_params", "critic_params", "metrics")
        for index, leaf in enumerate(jax.tree.leaves(getattr(state, name)))
    }
    # Split over every process's devices: gathered whole.
    result["observation"] = np.asarray(
        multihost_utils.process_allgather(state.observation, tiled=True)
    )
    return result


def main(process_id: int, port: int, output: Path) -> None:
    # CPU devices of different processes talk through gloo (JAX's default CPU
    # collectives only reach devices of one process).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=NUM_PROCESSES,
        process_id=process_id,
    )
    result = trained(jax.device_count())
    result["layout"] = np.asarray(
        [jax.process_count(), jax.device_count(), jax.local_device_count()]
    )
    np.savez(output / f"process_{process_id}.npz", **result)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
