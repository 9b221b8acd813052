"""PPO training throughput on gymnax CartPole-v1 (a benchmark, not a test).

Settings match a PureJaxRL-style reference: 4 envs x 128 steps per update,
4 epochs x 4 minibatches, actor and critic MLPs of 64 x 64 (tanh). For the
MLP and the GRU torso, with 1 seed and with 8 seeds in one ``jax.vmap``, it
reports the compile time (trace + lower + compile of one ``train`` call) and
env steps per second of the compiled call (all envs and seeds counted). The
last column divides that rate by the rate of a random-action rollout of the
same env batch through the same actor network (no learning), so the table
shows how much of the time is the update rather than acting.

    .venv/bin/python benchmarks/ppo.py                 # 500k env steps per seed
    .venv/bin/python benchmarks/ppo.py --steps 102400  # quicker
"""

from __future__ import annotations

import argparse
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import GRU, MLP, Categorical, FeatureExtractor, Network, VNetwork

NUM_ENVS, NUM_STEPS = 4, 128


def network(head: nn.Module, torso: str) -> Network:
    body = GRU(64) if torso == "gru" else MLP((64,), activation=nn.tanh)
    return Network(FeatureExtractor(MLP((64,), activation=nn.tanh)), body, head)


def make_agent(torso: str) -> PPO:
    env, env_params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    config = PPOConfig(num_envs=NUM_ENVS, num_steps=NUM_STEPS, num_minibatches=4, update_epochs=4)
    optimizer = optax.adam(2.5e-4, eps=1e-5)
    return PPO(
        config, env, env_params, network(Categorical(2), torso), network(VNetwork(), torso),
        optimizer, optimizer,
    )  # fmt: skip


def timed(function, *args):
    """(wall seconds, CPU seconds of this process) of ``function(*args)`` with its result ready."""
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - start, time.process_time() - start_cpu


def compile_train(agent: PPO, num_seeds: int, num_steps: int):
    """(compile seconds, a zero-argument call) of ``agent.train``, 1 seed or vmapped."""
    if num_seeds == 1:
        train = jax.jit(agent.train, static_argnums=2)
        keys, states = jax.random.key(1), agent.init(jax.random.key(0))
    else:
        train = jax.jit(jax.vmap(agent.train, in_axes=(0, 0, None)), static_argnums=2)
        keys = jax.random.split(jax.random.key(1), num_seeds)
        states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), num_seeds))
    start = time.perf_counter()
    compiled = train.lower(keys, states, num_steps).compile()
    return time.perf_counter() - start, lambda: compiled(keys, states)


def train_rate(agent: PPO, num_seeds: int, num_steps: int) -> tuple[float, float, float]:
    """(compile seconds, env steps per second and per CPU second, all seeds) of one train call."""
    compile_seconds, call = compile_train(agent, num_seeds, num_steps)
    seconds, cpu_seconds = timed(call)
    total = num_seeds * num_steps
    return compile_seconds, total / seconds, total / cpu_seconds


def random_rollout_rate(agent: PPO, num_steps: int) -> tuple[float, float]:
    """Env steps per second of uniform random actions, with the actor run on every step."""
    env, env_params, actor = agent.env, agent.env_params, agent.actor
    state = agent.init(jax.random.key(0))
    num_actions = env.action_space.n

    @jax.jit
    def rollout(key, state):
        def step(carry, key):
            env_state, observation, start, prev_action, prev_reward, actor_carry = carry
            action_key, env_key = jax.random.split(key)
            actor_carry, policy = actor.apply(
                state.actor_params, observation[:, None], start[:, None], actor_carry,
                prev_action[:, None], prev_reward[:, None],
            )  # fmt: skip
            # Random actions, but depending on the actor's output so it is not optimised away.
            action = jax.random.randint(action_key, (NUM_ENVS,), 0, num_actions)
            action = jnp.where(jnp.isnan(policy.logits[:, 0, 0]), 0, action)
            result = env.step(env_key, env_state, action, env_params)
            done = result.terminated | result.truncated
            carry = (result.state, result.observation, done, action, result.reward, actor_carry)
            return carry, None

        carry = (state.env_state, state.observation, state.episode_start,
                 state.previous_action, state.previous_reward, state.actor_carry)  # fmt: skip
        carry, _ = jax.lax.scan(step, carry, jax.random.split(key, num_steps // NUM_ENVS))
        return carry

    timed(rollout, jax.random.key(1), state)
    seconds, cpu_seconds = timed(rollout, jax.random.key(2), state)
    return num_steps / seconds, num_steps / cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=8, help="seeds in the vmapped run")
    parser.add_argument("--torsos", default="mlp,gru")
    args = parser.parse_args()
    platform = jax.devices()[0].platform
    print(f"jax {jax.__version__} on {platform}; {args.steps} env steps per seed; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| torso | seeds | compile (s) | env steps/s | x 1 seed | / random rollout "
          "| env steps / CPU s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for torso in args.torsos.split(","):
        agent = make_agent(torso)
        rollout, rollout_cpu = random_rollout_rate(agent, args.steps)
        single = None
        for seeds in (1, args.seeds):
            compile_seconds, rate, cpu_rate = train_rate(agent, seeds, args.steps)
            single = single or rate
            print(
                f"| {torso} | {seeds} | {compile_seconds:.1f} | {rate:,.0f} | "
                f"{rate / single:.2f} | {rate / rollout:.2f} | {cpu_rate:,.0f} |",
                flush=True,
            )
        print(f"| {torso} | random rollout | - | {rollout:,.0f} | - | 1.00 | {rollout_cpu:,.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
