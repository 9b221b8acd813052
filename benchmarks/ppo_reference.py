"""A minimal single-file PPO, the yardstick for ``benchmarks/ppo.py`` (a benchmark, not a test).

The PureJaxRL style: the whole training run is one jitted function, one
actor-critic module (two 64 x 64 tanh MLPs), gymnax's own auto-resetting
``step``, truncation treated as termination, no metrics, no checks. Settings
match ``benchmarks/ppo.py``: gymnax CartPole-v1, 4 envs x 128 steps,
4 epochs x 4 minibatches, Adam 2.5e-4 with global-norm clipping at 0.5.
Run it next to ``benchmarks/ppo.py`` on the same machine to compare the two:

    .venv/bin/python benchmarks/ppo_reference.py --steps 512000
"""

from __future__ import annotations

import argparse
import os
import time

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax

NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 4, 128, 4, 4
GAMMA, GAE_LAMBDA, CLIP, ENTROPY, VALUE = 0.99, 0.95, 0.2, 0.01, 0.5


class ActorCritic(nn.Module):
    """Separate 64 x 64 tanh MLPs for the logits and the value."""

    num_actions: int

    @nn.compact
    def __call__(self, observation: jax.Array) -> tuple[jax.Array, jax.Array]:
        actor = nn.tanh(nn.Dense(64)(nn.tanh(nn.Dense(64)(observation))))
        critic = nn.tanh(nn.Dense(64)(nn.tanh(nn.Dense(64)(observation))))
        return nn.Dense(self.num_actions)(actor), nn.Dense(1)(critic)[..., 0]


def make_train(num_updates: int):
    """``train(key) -> final returns`` for ``num_updates`` updates of one seed."""
    env, env_params = gymnax.make("CartPole-v1")
    network = ActorCritic(env.action_space(env_params).n)
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(2.5e-4, eps=1e-5))
    batched_reset = jax.vmap(env.reset, in_axes=(0, None))
    batched_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def loss(params, batch):
        observation, action, old_log_prob, old_value, advantage, target = batch
        logits, value = network.apply(params, observation)
        log_probs = jax.nn.log_softmax(logits)
        log_prob = jnp.take_along_axis(log_probs, action[:, None], axis=1)[:, 0]
        clipped_value = old_value + jnp.clip(value - old_value, -CLIP, CLIP)
        value_loss = (
            0.5 * jnp.maximum(jnp.square(value - target), jnp.square(clipped_value - target)).mean()
        )
        ratio = jnp.exp(log_prob - old_log_prob)
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        policy_loss = -jnp.minimum(
            ratio * advantage, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * advantage
        ).mean()
        entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
        return policy_loss + VALUE * value_loss - ENTROPY * entropy

    def train(key: jax.Array) -> jax.Array:
        key, init_key, reset_key = jax.random.split(key, 3)
        params = network.init(init_key, jnp.zeros(env.observation_space(env_params).shape))
        opt_state = optimizer.init(params)
        observation, env_state = batched_reset(jax.random.split(reset_key, NUM_ENVS), env_params)

        def update(carry, update_key):
            params, opt_state, observation, env_state = carry

            def env_step(carry, step_key):
                observation, env_state = carry
                action_key, env_key = jax.random.split(step_key)
                logits, value = network.apply(params, observation)
                action = jax.random.categorical(action_key, logits)
                log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[
                    :, 0
                ]
                # gymnax >= 1.0 reports termination and truncation apart; like PureJaxRL,
                # this PPO treats both as the end of the episode.
                next_observation, env_state, reward, terminated, truncated, _ = batched_step(
                    jax.random.split(env_key, NUM_ENVS), env_state, action, env_params
                )
                done = terminated | truncated
                transition = (observation, action, log_prob, value, reward, done)
                return (next_observation, env_state), transition

            rollout_key, epochs_key = jax.random.split(update_key)
            (observation, env_state), rollout = jax.lax.scan(
                env_step, (observation, env_state), jax.random.split(rollout_key, NUM_STEPS)
            )
            observations, actions, log_probs, values, rewards, dones = rollout
            _, last_value = network.apply(params, observation)

            def advantage_step(carry, step):
                advantage, next_value = carry
                reward, done, value = step
                not_done = 1.0 - done
                delta = reward + GAMMA * next_value * not_done - value
                advantage = delta + GAMMA * GAE_LAMBDA * not_done * advantage
                return (advantage, value), advantage

            _, advantages = jax.lax.scan(
                advantage_step,
                (jnp.zeros(NUM_ENVS), last_value),
                (rewards, dones.astype(jnp.float32), values),
                reverse=True,
            )
            batch = (observations, actions, log_probs, values, advantages, advantages + values)
            batch = jax.tree.map(lambda x: x.reshape(NUM_ENVS * NUM_STEPS, *x.shape[2:]), batch)

            def epoch(carry, epoch_key):
                order = jax.random.permutation(epoch_key, NUM_ENVS * NUM_STEPS)
                minibatches = jax.tree.map(
                    lambda x: x[order].reshape(MINIBATCHES, -1, *x.shape[1:]), batch
                )

                def minibatch_step(carry, minibatch):
                    params, opt_state = carry
                    grads = jax.grad(loss)(params, minibatch)
                    updates, opt_state = optimizer.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                return jax.lax.scan(minibatch_step, carry, minibatches)[0], None

            (params, opt_state), _ = jax.lax.scan(
                epoch, (params, opt_state), jax.random.split(epochs_key, EPOCHS)
            )
            return (params, opt_state, observation, env_state), rewards.sum()

        carry = (params, opt_state, observation, env_state)
        _, rewards = jax.lax.scan(update, carry, jax.random.split(key, num_updates))
        return rewards

    return train


def compile_train(num_seeds: int, num_updates: int):
    """(compile seconds, a zero-argument call) of ``num_updates`` updates, 1 seed or vmapped."""
    train = make_train(num_updates)
    if num_seeds == 1:
        keys = jax.random.key(0)
    else:
        train, keys = jax.vmap(train), jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    return time.perf_counter() - start, lambda: compiled(keys)


def timed(function, *args) -> float:
    """Wall seconds of ``function(*args)`` with its result ready."""
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=8, help="seeds in the vmapped run")
    args = parser.parse_args()
    num_updates = args.steps // (NUM_ENVS * NUM_STEPS)
    steps = num_updates * NUM_ENVS * NUM_STEPS
    load = os.getloadavg()[0]
    print(f"jax {jax.__version__} on {jax.default_backend()}; {steps} env steps per seed; "
          f"load average {load:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| reference | seeds | compile (s) | env steps/s | x 1 seed |")
    print("|---|---|---|---|---|")
    single_rate = None
    for seeds in (1, args.seeds):
        compile_seconds, call = compile_train(seeds, num_updates)
        timed(call)  # a warm run first: page faults, thread pool start-up
        rate = seeds * steps / timed(call)
        single_rate = single_rate or rate
        print(f"| single-file PPO | {seeds} | {compile_seconds:.1f} | {rate:,.0f} | "
              f"{rate / single_rate:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
