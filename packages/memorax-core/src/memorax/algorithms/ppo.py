"""Proximal policy optimisation (Schulman et al., 2017) for agents with or without memory.

One jitted function does a whole training call, read top to bottom:
collect a rollout (scanned over time), bootstrap values and advantages
(:mod:`memorax.algorithms.gae`, scanned backwards), then update epochs of
minibatches (scanned). Recurrent agents train on whole env sequences that
start from the carries stored at the start of the rollout; feed-forward
agents shuffle single transitions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from memorax.algorithms.agent_checks import check_agent_arguments
from memorax.algorithms.argument_checks import is_int, is_number, num_iterations
from memorax.algorithms.data_parallel import (
    check_num_devices_field,
    data_parallel_for,
    place,
    put_replicated,
    split,
)
from memorax.algorithms.evaluate_call import evaluate_agent
from memorax.algorithms.evaluation import EvaluationResult, run_episodes
from memorax.algorithms.gae import generalized_advantage_estimation
from memorax.algorithms.metrics_stream import MetricsCallback, emit
from memorax.envs import Box, Discrete, Environment, EpisodeStatistics
from memorax.networks import Categorical, Gaussian, is_sequence_model

__all__ = ["METRIC_NAMES", "PPO", "PPOConfig", "PPOState"]

METRIC_NAMES = (
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "episode_return",
    "episode_length",
    "episode_count",
    "env_steps",
    "update",
)
"""Keys of ``PPOState.metrics``, one value per update.

Losses, ``entropy``, ``approx_kl`` and ``clip_fraction`` are means over the
minibatch steps of the update; ``explained_variance`` is of the rollout's
value predictions against their GAE targets; ``episode_return`` and
``episode_length`` are means over the episodes that ended during the
update's rollout (NaN when none ended) and ``episode_count`` is how many
ended; ``env_steps`` and ``update`` are the counters after the update.
"""


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters.

    Attributes:
        num_envs: env copies stepped together; must equal the env's ``num_envs``.
        num_steps: steps per env copy in each rollout (one update per rollout).
        gamma: discount factor.
        gae_lambda: GAE lambda.
        num_minibatches: minibatches per epoch. Feed-forward agents split the
            ``num_envs * num_steps`` transitions, recurrent agents split the
            ``num_envs`` sequences, so that number must be divisible by it.
        update_epochs: passes over each rollout.
        normalize_advantage: standardise advantages within each minibatch.
        clip_coefficient: PPO's ratio clip ``epsilon``.
        clip_value_loss: clip the value update around the rollout's values.
        entropy_coefficient: weight of the entropy bonus in the actor loss.
        value_coefficient: weight of the value loss in the critic loss.
        max_grad_norm: clip each network's gradient to this global norm
            (``None``: no clipping).
        target_kl: skip the remaining epochs of an update once an epoch's mean
            approximate KL exceeds it (``None``: never).
        burn_in_length: recurrent agents only: the first ``burn_in_length``
            steps of each training sequence only refresh the carry (no
            gradient, no loss), so the carry stored at rollout start is
            brought up to date with the current parameters.
        num_devices: ``None`` (default): train on one device. An int: train
            data-parallel over the first ``num_devices`` of ``jax.devices()``
            (``jax.device_count()`` for all of them, every host's after
            ``jax.distributed.initialize()``): env copies and rollouts are
            split evenly over the devices (so ``num_envs`` must be a multiple
            of it), parameters and optimizer states are replicated, gradients
            are averaged over the global batch. Same key and config give the
            single-device result up to float rounding. JAX-native envs only.
    """

    num_envs: int
    num_steps: int
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    normalize_advantage: bool = True
    clip_coefficient: float = 0.2
    clip_value_loss: bool = True
    entropy_coefficient: float = 0.01
    value_coefficient: float = 0.5
    max_grad_norm: float | None = 0.5
    target_kl: float | None = None
    burn_in_length: int = 0
    num_devices: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "num_envs": (is_int, 1, None, "a positive integer"),
            "num_steps": (is_int, 1, None, "a positive integer"),
            "num_minibatches": (is_int, 1, None, "a positive integer"),
            "update_epochs": (is_int, 1, None, "a positive integer"),
            "burn_in_length": (is_int, 0, None, "a non-negative integer"),
            "gamma": (is_number, 0.0, 1.0, "in (0, 1]"),
            "gae_lambda": (is_number, 0.0, 1.0, "in [0, 1]"),
            "clip_coefficient": (is_number, 0.0, None, "a positive number"),
            "entropy_coefficient": (is_number, 0.0, None, "a non-negative number"),
            "value_coefficient": (is_number, 0.0, None, "a non-negative number"),
        }
        for name, (kind, low, high, what) in checks.items():
            value = getattr(self, name)
            ok = kind(value) and value >= low and (high is None or value <= high)
            if name in ("gamma", "clip_coefficient"):
                ok = ok and value > low
            if not ok:
                raise ValueError(f"PPOConfig: {name} must be {what}, got {value!r}.")
        for name in ("max_grad_norm", "target_kl"):
            value = getattr(self, name)
            if not (value is None or (is_number(value) and value > 0)):
                raise ValueError(
                    f"PPOConfig: {name} must be a positive number or None, got {value!r}."
                )
        check_num_devices_field("PPOConfig", self.num_envs, self.num_devices)
        if self.burn_in_length >= self.num_steps:
            raise ValueError(
                f"PPOConfig: burn_in_length={self.burn_in_length} must be smaller than "
                f"num_steps={self.num_steps}, or no step of a sequence is left to learn from."
            )
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(
                f"PPOConfig: num_envs * num_steps = {self.steps_per_update} transitions cannot "
                f"be split into num_minibatches={self.num_minibatches} equal minibatches; "
                "choose num_minibatches dividing it."
            )

    @property
    def steps_per_update(self) -> int:
        """Env steps (all copies) collected per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps


class PPOState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds).

    Attributes:
        actor_params, critic_params: Flax variables of the two networks.
        actor_optimizer_state, critic_optimizer_state: optax states.
        env_state: the (episode-statistics wrapped) env state.
        observation: ``[num_envs, *obs_shape]`` the next observation to act on.
        episode_start: ``[num_envs]`` bool, ``observation`` starts an episode.
        previous_action: ``[num_envs]`` int (discrete) or ``[num_envs, A]``
            float, zero at an episode start.
        previous_reward: ``[num_envs]`` float32, zero at an episode start.
        actor_carry, critic_carry: torso carries (``None`` for feed-forward).
        env_steps: int32, env steps taken in training, all copies counted.
        update_count: int32, PPO updates done.
        metrics: dict of ``[num_updates]`` arrays from the last ``train`` call
            (keys: :data:`METRIC_NAMES`); ``[0]`` arrays before any training.
        evaluation: the :class:`~memorax.algorithms.EvaluationResult` of the
            last ``evaluate`` call (empty before any).
    """

    actor_params: Any
    critic_params: Any
    actor_optimizer_state: Any
    critic_optimizer_state: Any
    env_state: Any
    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    actor_carry: Any
    critic_carry: Any
    env_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


class _Transition(struct.PyTreeNode):
    """One rollout step for every env copy (time-major once scanned)."""

    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_observation: jax.Array
    critic_carry: Any
    episode: dict[str, jax.Array]


class _Batch(struct.PyTreeNode):
    """Training data, batch-major ``[num_envs, num_steps, ...]`` (or flattened)."""

    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class PPO:
    """PPO with separate actor and critic networks, for JAX-native and callback envs.

    Args:
        config: :class:`PPOConfig`.
        env: a batched env from ``make(...)`` with ``num_envs == config.num_envs``
            and a ``Discrete`` or ``Box`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        actor: a :class:`~memorax.networks.Network` with a ``Categorical``
            (discrete) or ``Gaussian`` (continuous) head.
        critic: a :class:`~memorax.networks.Network` with a ``VNetwork`` head.
        actor_optimizer, critic_optimizer: optax transformations (gradient
            clipping by ``config.max_grad_norm`` is applied before them).
        metrics_callback: optional host function called after every update
            with a dict of that update's metrics (:data:`METRIC_NAMES` plus
            ``"seed"``, the index along a ``jax.vmap`` over seeds, 0 without).

    Example::

        env, env_params = make("gymnax::CartPole-v1", num_envs=8)
        agent = PPO(config, env, env_params, actor, critic, optax.adam(3e-4), optax.adam(3e-4))
        state = agent.init(jax.random.key(0))
        state = agent.train(jax.random.key(1), state, num_steps=10_000)
        state.metrics["episode_return"]          # [num_updates]
        state = agent.evaluate(jax.random.key(2), state)
        state.evaluation.returns                 # [num_envs, num_episodes]
    """

    def __init__(
        self,
        config: PPOConfig,
        env: Environment,
        env_params: Any,
        actor: nn.Module,
        critic: nn.Module,
        actor_optimizer: optax.GradientTransformation,
        critic_optimizer: optax.GradientTransformation,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        check_agent_arguments(
            "PPO", config, PPOConfig, env,
            networks={"actor": actor, "critic": critic},
            optimizers={"actor_optimizer": actor_optimizer, "critic_optimizer": critic_optimizer},
        )  # fmt: skip
        self.config = config
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        self.actor = actor
        self.critic = critic
        self.actor_optimizer = actor_optimizer
        self.critic_optimizer = critic_optimizer
        self.metrics_callback = metrics_callback
        self.recurrent = _has_memory(actor) or _has_memory(critic)
        self._check_action_space(env)
        if self.recurrent and config.num_envs % config.num_minibatches:
            raise ValueError(
                f"PPO: a recurrent agent trains on whole env sequences, so num_envs="
                f"{config.num_envs} must be divisible by num_minibatches="
                f"{config.num_minibatches}."
            )
        if config.burn_in_length and not self.recurrent:
            raise ValueError(
                "PPO: burn_in_length > 0 needs a recurrent (SequenceModel) torso; feed-forward "
                "agents have no carry to burn in. Set burn_in_length=0."
            )
        self.data_parallel = data_parallel_for("PPO", env, config.num_envs, config.num_devices)
        self._train_jit = jax.jit(self._train, static_argnames="num_updates")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> PPOState:
        """Initial parameters, optimizer states and a freshly reset env.

        Args:
            key: a PRNG key (vmap over keys to initialise several seeds).

        Returns:
            A :class:`PPOState` with zero counters, empty metrics and evaluation.
        """
        actor_key, critic_key, env_key = jax.random.split(key, 3)
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(env_key, self.env_params)
        start = jnp.ones((num_envs,), bool)
        previous_action = self._zero_actions(num_envs)
        previous_reward = jnp.zeros((num_envs,), jnp.float32)
        actor_carry = self.actor.initialize_carry(num_envs)
        critic_carry = self.critic.initialize_carry(num_envs)
        inputs = (observation[:, None], start[:, None])
        extra = (previous_action[:, None], previous_reward[:, None])
        actor_params = self.actor.init(actor_key, *inputs, actor_carry, *extra)
        critic_params = self.critic.init(critic_key, *inputs, critic_carry, *extra)
        state = PPOState(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_optimizer_state=self.actor_optimizer.init(actor_params),
            critic_optimizer_state=self.critic_optimizer.init(critic_params),
            env_state=env_state,
            observation=observation,
            episode_start=start,
            previous_action=previous_action,
            previous_reward=previous_reward,
            actor_carry=actor_carry,
            critic_carry=critic_carry,
            env_steps=jnp.zeros((), jnp.int32),
            update_count=jnp.zeros((), jnp.int32),
            metrics=_empty_metrics(),
            evaluation=EvaluationResult.empty(num_envs, 1),
        )
        return self._place(state)

    def train(self, key: jax.Array, state: PPOState, num_steps: int) -> PPOState:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` updates, warning
        when ``num_steps`` is not a multiple of that. ``num_steps`` is static:
        each new value compiles once. ``jax.vmap(agent.train, in_axes=(0, 0,
        None))`` trains several seeds of a JAX-native env at once.

        Args:
            key: PRNG key for actions, env steps and minibatch shuffling.
            state: from :meth:`init` or an earlier :meth:`train`.
            num_steps: env steps to take, a Python int.

        Returns:
            The new state; ``state.metrics`` holds ``[num_updates]`` arrays
            (``[seeds, num_updates]`` under vmap), see :data:`METRIC_NAMES`.
        """
        num_updates = num_iterations("PPO.train", num_steps, self.config.steps_per_update, "update")
        metrics = put_replicated(self.data_parallel, _empty_metrics())
        return self._train_jit(key, state.replace(metrics=metrics), num_updates=num_updates)

    def evaluate(
        self,
        key: jax.Array,
        state: PPOState,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> PPOState:
        """Run complete episodes with the deterministic policy (the distribution's mode).

        Each env copy records its first ``num_episodes`` episodes; results go
        to ``state.evaluation`` (returns, lengths, count). Parameters,
        optimizer states, counters and training metrics are never changed.

        With the training env: a JAX-native env is reset from ``key`` into a
        separate state, so training continues untouched. A callback env has
        one real env behind it, which evaluation resets; the returned state
        then holds a freshly reset training env (episodes in progress are
        lost) and the state passed in is stale: the env refuses to step it.
        Pass ``env=`` (and ``env_params=``) to evaluate on a separate env
        with the same spaces instead; the training env is not touched.

        Args:
            key: PRNG key for the evaluation env.
            state: the agent state.
            num_episodes: episodes recorded per env copy.
            env, env_params: optional separate evaluation env.
            max_steps: steps per env copy at most; episodes unfinished by then
                are recorded as NaN returns.

        Returns:
            ``state`` with ``evaluation`` replaced (and, for a callback
            training env evaluated in place, its env re-reset).
        """
        return evaluate_agent(
            "PPO", key, state, state.actor_params,
            num_episodes=num_episodes, max_steps=max_steps, env=env, env_params=env_params,
            training_env=self.env.env, training_env_params=self.env_params,
            evaluate_jit=self._evaluate_jit, reset_jit=self._reset_jit,
        )  # fmt: skip

    def reset_env(self, key: jax.Array, state: PPOState) -> PPOState:
        """Start fresh episodes in the training env, keeping everything the agent learned.

        Parameters, optimizer states, counters and metrics are kept; the env
        state, the next observation, the previous action/reward and the
        carries start a new episode in every copy. Use it after restoring a
        checkpoint of a run on a callback env, whose host env cannot be saved.
        """
        return self._reset_jit(key, state)

    # ------------------------------------------------------------------ training

    def _place(self, state: PPOState) -> PPOState:
        """Data-parallel: env-axis fields split over the mesh, the rest replicated."""
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def _split(self, tree: Any, axis: int = 0) -> Any:
        """Data-parallel: ``tree`` split over the mesh along its env ``axis``."""
        return split(self.data_parallel, tree, axis)

    def _train(self, key: jax.Array, state: PPOState, num_updates: int) -> PPOState:
        config = self.config
        actor, critic, env, env_params = self.actor, self.critic, self.env, self.env_params
        num_envs, num_steps = config.num_envs, config.num_steps

        def update_step(state: PPOState, update_key: jax.Array):
            state = self._place(state)
            rollout_key, epochs_key = jax.random.split(update_key)
            initial_actor_carry, initial_critic_carry = state.actor_carry, state.critic_carry

            # 1. Rollout: act and step every env copy, num_steps times.
            def env_step(runner: tuple, step_keys: jax.Array):
                (env_state, observation, start, prev_action, prev_reward,
                 actor_carry, critic_carry) = runner  # fmt: skip
                action_key, env_key = step_keys
                inputs = (observation[:, None], start[:, None])
                extra = (prev_action[:, None], prev_reward[:, None])
                actor_carry, policy = _apply(
                    actor, state.actor_params, *inputs, actor_carry, *extra
                )
                critic_carry, value = _apply(
                    critic, state.critic_params, *inputs, critic_carry, *extra
                )
                action = policy.sample(action_key)
                log_prob = policy.log_prob(action)[:, 0]
                action = action[:, 0]
                step = env.step(env_key, env_state, self._env_action(action), env_params)
                done = step.terminated | step.truncated
                transition = _Transition(
                    observation=observation,
                    episode_start=start,
                    previous_action=prev_action,
                    previous_reward=prev_reward,
                    action=action,
                    log_prob=log_prob,
                    value=value[:, 0],
                    reward=step.reward,
                    terminated=step.terminated,
                    done=done,
                    final_observation=step.info["final_observation"],
                    critic_carry=critic_carry,
                    episode=step.info["episode"],
                )
                runner = (
                    step.state,
                    step.observation,
                    done,
                    jnp.where(_expand(done, action), jnp.zeros_like(action), action),
                    jnp.where(done, 0.0, step.reward),
                    actor_carry,
                    critic_carry,
                )
                return self._split(runner), self._split(transition)

            runner = (state.env_state, state.observation, state.episode_start,
                      state.previous_action, state.previous_reward,
                      state.actor_carry, state.critic_carry)  # fmt: skip
            runner, rollout = jax.lax.scan(
                # Both keys of every step from one split: each split is a loop of
                # small kernels on CPUs, a visible share of a cheap step.
                env_step,
                runner,
                jax.random.split(rollout_key, (num_steps, 2)),
            )

            # 2. Bootstrap values V(final_observation_t), each from the critic
            # carry right after step t, in one batched call; then GAE.
            flat = num_steps * num_envs
            _, bootstrap = _apply(
                critic,
                state.critic_params,
                _merge_time(rollout.final_observation)[:, None],
                jnp.zeros((flat, 1), bool),
                jax.tree.map(_merge_time, rollout.critic_carry),
                _merge_time(rollout.action)[:, None],
                _merge_time(rollout.reward)[:, None],
            )
            bootstrap = bootstrap.reshape(num_steps, num_envs)
            advantages, targets = generalized_advantage_estimation(
                rollout.reward, rollout.value, bootstrap, rollout.terminated, rollout.done,
                config.gamma, config.gae_lambda,
            )  # fmt: skip
            batch = jax.tree.map(
                lambda x: self._split(jnp.swapaxes(x, 0, 1)),
                _Batch(
                    observation=rollout.observation,
                    episode_start=rollout.episode_start,
                    previous_action=rollout.previous_action,
                    previous_reward=rollout.previous_reward,
                    action=rollout.action,
                    log_prob=rollout.log_prob,
                    value=rollout.value,
                    advantage=advantages,
                    target=targets,
                ),
            )

            # 3. Update epochs over minibatches.
            def epoch(carry: tuple, epoch_key: jax.Array):
                params, opt_states, stopped = carry

                def run_epoch(params, opt_states):
                    minibatches = self._minibatches(
                        epoch_key, batch, initial_actor_carry, initial_critic_carry
                    )
                    # Each minibatch [M, size, ...] is itself split over the devices.
                    minibatches = self._split(minibatches, axis=1)
                    (params, opt_states), stats = jax.lax.scan(
                        minibatch_step, (params, opt_states), minibatches
                    )
                    return params, opt_states, jax.tree.map(jnp.mean, stats)

                def skip_epoch(params, opt_states):
                    return params, opt_states, dict.fromkeys(_LOSS_NAMES, jnp.zeros(()))

                if config.target_kl is None:
                    params, opt_states, stats = run_epoch(params, opt_states)
                else:
                    params, opt_states, stats = jax.lax.cond(
                        stopped, skip_epoch, run_epoch, params, opt_states
                    )
                ran = jnp.logical_not(stopped)
                if config.target_kl is not None:
                    stopped = stopped | (stats["approx_kl"] > config.target_kl)
                return (params, opt_states, stopped), (stats, ran)

            params = (state.actor_params, state.critic_params)
            opt_states = (state.actor_optimizer_state, state.critic_optimizer_state)
            (params, opt_states, _), (stats, ran) = jax.lax.scan(
                epoch,
                (params, opt_states, jnp.zeros((), bool)),
                jax.random.split(epochs_key, config.update_epochs),
            )
            epochs_run = jnp.sum(ran)
            stats = {k: jnp.sum(v * ran) / epochs_run for k, v in stats.items()}

            # 4. Metrics of this update.
            episode = rollout.episode
            episode_count = jnp.sum(episode["done"], dtype=jnp.int32)
            per_episode = jnp.where(episode_count > 0, 1.0 / episode_count, jnp.nan)
            env_steps = state.env_steps + num_envs * num_steps
            update_count = state.update_count + 1
            metrics = {
                **stats,
                "explained_variance": _explained_variance(rollout.value, targets),
                "episode_return": jnp.sum(episode["return"]) * per_episode,
                "episode_length": jnp.sum(episode["length"], dtype=jnp.float32) * per_episode,
                "episode_count": episode_count,
                "env_steps": env_steps,
                "update": update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)

            (env_state, observation, start, prev_action, prev_reward,
             actor_carry, critic_carry) = runner  # fmt: skip
            state = state.replace(
                actor_params=params[0],
                critic_params=params[1],
                actor_optimizer_state=opt_states[0],
                critic_optimizer_state=opt_states[1],
                env_state=env_state,
                observation=observation,
                episode_start=start,
                previous_action=prev_action,
                previous_reward=prev_reward,
                actor_carry=actor_carry,
                critic_carry=critic_carry,
                env_steps=env_steps,
                update_count=update_count,
            )
            return state, metrics

        def minibatch_step(carry: tuple, minibatch: tuple):
            (actor_params, critic_params), (actor_opt, critic_opt) = carry
            data, actor_carry, critic_carry = minibatch

            # One backward pass for both networks: their losses share no parameters.
            def loss(params: tuple[Any, Any]) -> tuple[jax.Array, tuple]:
                actor_loss, actor_stats = self._actor_loss(params[0], data, actor_carry)
                critic_loss, value_loss = self._critic_loss(params[1], data, critic_carry)
                return actor_loss + critic_loss, (actor_stats, value_loss)

            (actor_grads, critic_grads), (actor_stats, value_loss) = jax.grad(loss, has_aux=True)(
                (actor_params, critic_params)
            )
            actor_params, actor_opt = self._apply_gradients(
                self.actor_optimizer, actor_grads, actor_opt, actor_params
            )
            critic_params, critic_opt = self._apply_gradients(
                self.critic_optimizer, critic_grads, critic_opt, critic_params
            )
            stats = {**actor_stats, "value_loss": value_loss}
            return ((actor_params, critic_params), (actor_opt, critic_opt)), stats

        state, metrics = jax.lax.scan(update_step, state, jax.random.split(key, num_updates))
        return self._place(state.replace(metrics=metrics))

    def _minibatches(
        self, key: jax.Array, batch: _Batch, actor_carry: Any, critic_carry: Any
    ) -> tuple[_Batch, Any, Any]:
        """Shuffle the rollout into ``[num_minibatches, ...]`` stacks.

        Recurrent: whole env sequences ``[M, num_envs / M, num_steps, ...]``
        with their rollout-start carries. Feed-forward: single transitions
        ``[M, num_envs * num_steps / M, 1, ...]`` (time axis of length 1).
        """
        config = self.config
        groups = config.num_minibatches
        if self.recurrent:
            order = jax.random.permutation(key, config.num_envs)

            def split(x: jax.Array) -> jax.Array:
                x = jnp.take(x, order, axis=0)
                return x.reshape(groups, -1, *x.shape[1:])

            return jax.tree.map(split, (batch, actor_carry, critic_carry))
        order = jax.random.permutation(key, config.steps_per_update)

        def shuffle(x: jax.Array) -> jax.Array:
            x = x.reshape(config.steps_per_update, 1, *x.shape[2:])
            x = jnp.take(x, order, axis=0)
            return x.reshape(groups, -1, *x.shape[1:])

        return jax.tree.map(shuffle, batch), None, None

    def _sequence_apply(self, network: nn.Module, params: Any, data: _Batch, carry: Any) -> Any:
        """Run ``network`` over minibatch sequences; burn-in steps only refresh the carry."""
        burn_in = self.config.burn_in_length

        def apply(data: _Batch, carry: Any) -> tuple[Any, Any]:
            return _apply(
                network, params, data.observation, data.episode_start, carry,
                data.previous_action, data.previous_reward,
            )  # fmt: skip

        if burn_in and _has_memory(network):
            prefix = jax.tree.map(lambda x: x[:, :burn_in], data)
            carry, _ = apply(prefix, carry)
            carry = jax.lax.stop_gradient(carry)
        elif not _has_memory(network):
            carry = None
        if burn_in:
            data = jax.tree.map(lambda x: x[:, burn_in:], data)
        return apply(data, carry)[1]

    def _actor_loss(self, params: Any, data: _Batch, carry: Any):
        config = self.config
        policy = self._sequence_apply(self.actor, params, data, carry)
        data = self._loss_steps(data)
        log_ratio = policy.log_prob(data.action) - data.log_prob
        ratio = jnp.exp(log_ratio)
        advantage = data.advantage
        if config.normalize_advantage:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        clipped = jnp.clip(ratio, 1.0 - config.clip_coefficient, 1.0 + config.clip_coefficient)
        policy_loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped * advantage))
        entropy = jnp.mean(policy.entropy())
        stats = {
            "policy_loss": policy_loss,
            "entropy": entropy,
            "approx_kl": jax.lax.stop_gradient(jnp.mean((ratio - 1.0) - log_ratio)),
            "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > config.clip_coefficient),
        }
        return policy_loss - config.entropy_coefficient * entropy, stats

    def _critic_loss(self, params: Any, data: _Batch, carry: Any):
        config = self.config
        value = self._sequence_apply(self.critic, params, data, carry)
        data = self._loss_steps(data)
        value_loss = jnp.square(value - data.target)
        if config.clip_value_loss:
            clipped = data.value + jnp.clip(
                value - data.value, -config.clip_coefficient, config.clip_coefficient
            )
            value_loss = jnp.maximum(value_loss, jnp.square(clipped - data.target))
        value_loss = 0.5 * jnp.mean(value_loss)
        return config.value_coefficient * value_loss, value_loss

    def _loss_steps(self, data: _Batch) -> _Batch:
        """The steps a loss is computed on: all but the burn-in prefix."""
        burn_in = self.config.burn_in_length
        return jax.tree.map(lambda x: x[:, burn_in:], data) if burn_in else data

    def _apply_gradients(
        self, optimizer: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any
    ) -> tuple[Any, Any]:
        if self.config.max_grad_norm is not None:
            norm = optax.tree.norm(grads)
            scale = jnp.minimum(1.0, self.config.max_grad_norm / (norm + 1e-6))
            grads = jax.tree.map(lambda g: g * scale, grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    # ------------------------------------------------------------------ evaluation

    def _evaluate(
        self, key: jax.Array, actor_params: Any, env_params: Any, *,
        eval_env: Environment, num_episodes: int, max_steps: int,
    ) -> EvaluationResult:  # fmt: skip
        actor = self.actor

        def policy(carry, observation, start, prev_action, prev_reward):
            carry, distribution = _apply(
                actor, actor_params, observation[:, None], start[:, None], carry,
                prev_action[:, None], prev_reward[:, None],
            )  # fmt: skip
            action = distribution.mode()[:, 0]
            return carry, action, self._env_action(action)

        result, _, _ = run_episodes(
            key,
            eval_env,
            env_params,
            policy,
            actor.initialize_carry(eval_env.num_envs),
            self._zero_actions(eval_env.num_envs),
            num_episodes,
            max_steps,
        )
        return result

    def _reset_training_env(self, key: jax.Array, state: PPOState) -> PPOState:
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(key, self.env_params)
        state = state.replace(
            env_state=env_state,
            observation=observation,
            episode_start=jnp.ones((num_envs,), bool),
            previous_action=self._zero_actions(num_envs),
            previous_reward=jnp.zeros((num_envs,), jnp.float32),
            actor_carry=self.actor.initialize_carry(num_envs),
            critic_carry=self.critic.initialize_carry(num_envs),
        )
        return self._place(state)

    # ------------------------------------------------------------------ actions

    def _check_action_space(self, env: Environment) -> None:
        space, head = env.action_space, getattr(self.actor, "head", None)
        if isinstance(space, Discrete):
            if isinstance(head, Gaussian):
                raise ValueError(f"PPO: {env.name} has discrete actions {space}; use a "
                                 "Categorical head for the actor, not Gaussian.")  # fmt: skip
            if isinstance(head, Categorical) and head.action_dim != space.n:
                raise ValueError(
                    f"PPO: the actor's Categorical({head.action_dim}) does not match "
                    f"{env.name}'s {space}; use Categorical({space.n})."
                )
        elif isinstance(space, Box):
            size = math.prod(space.shape)
            if isinstance(head, Categorical):
                raise ValueError(f"PPO: {env.name} has continuous actions {space}; use a "
                                 "Gaussian head for the actor, not Categorical.")  # fmt: skip
            if isinstance(head, Gaussian) and head.action_dim != size:
                raise ValueError(f"PPO: the actor's Gaussian({head.action_dim}) does not "
                                 f"match {env.name}'s {space}; use Gaussian({size}).")  # fmt: skip
        else:
            raise ValueError(
                f"PPO supports Discrete and Box action spaces; {env.name} has {space}."
            )

    def _zero_actions(self, num_envs: int) -> jax.Array:
        space = self.env.action_space
        if isinstance(space, Discrete):
            return jnp.zeros((num_envs,), jnp.int32)
        return jnp.zeros((num_envs, math.prod(space.shape)), jnp.float32)

    def _env_action(self, action: jax.Array) -> jax.Array:
        """Policy output -> env action: offset discrete actions, clip continuous ones."""
        space = self.env.action_space
        if isinstance(space, Discrete):
            return action.astype(space.dtype) + space.start
        if not isinstance(space, Box):
            raise TypeError(f"PPO: unsupported action space {space}.")
        low = np.asarray(space.low_array, np.float32).reshape(-1)
        high = np.asarray(space.high_array, np.float32).reshape(-1)
        action = jnp.clip(action, low, high)
        return action.reshape(action.shape[0], *space.shape)


_ENV_AXIS_FIELDS = ("env_state", "observation", "episode_start", "previous_action",
                    "previous_reward", "actor_carry", "critic_carry")  # fmt: skip
"""``PPOState`` fields with a leading env axis, split over devices when data-parallel."""

_LOSS_NAMES = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")


def _empty_metrics() -> dict[str, jax.Array]:
    integer = {"episode_count", "env_steps", "update"}
    return {
        name: jnp.zeros((0,), jnp.int32 if name in integer else jnp.float32)
        for name in METRIC_NAMES
    }


def _apply(network: nn.Module, params: Any, *args: Any) -> tuple[Any, Any]:
    """``network.apply`` typed as what a Network returns: ``(carry, output)``."""
    return network.apply(params, *args)


def _explained_variance(values: jax.Array, targets: jax.Array) -> jax.Array:
    variance = jnp.var(targets)
    return jnp.where(variance > 0, 1.0 - jnp.var(targets - values) / variance, jnp.nan)


def _has_memory(network: nn.Module) -> bool:
    return is_sequence_model(getattr(network, "torso", None))


def _merge_time(x: jax.Array) -> jax.Array:
    """``[T, B, ...] -> [T * B, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return jnp.reshape(mask, mask.shape + (1,) * (like.ndim - mask.ndim))
