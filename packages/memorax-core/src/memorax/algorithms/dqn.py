"""Deep Q-networks (Mnih et al., 2015) with double Q, dueling heads, n-step returns and memory.

One jitted function does a whole training call. Each iteration, read top to
bottom: every env copy acts epsilon-greedily for ``num_steps`` steps
(scanned), the steps go to a :class:`~memorax.buffers.SequenceBuffer`, then
``gradient_steps`` updates each regress ``Q(o_t, a_t)`` of sampled
sequences onto n-step targets from a target network, copied from the online
network every ``target_update_interval`` gradient steps.

Sequences are ``burn_in_length + sequence_length + n_step - 1`` stored steps.
Both networks run over them from their initial carry (reset wherever an
episode starts); the burn-in prefix only warms up the carry (R2D2's
"burn-in" with a zero start state), the next ``sequence_length`` steps are
learned from, and the last ``n_step - 1`` steps only supply rewards and
bootstraps. A feed-forward agent uses ``sequence_length=1, burn_in_length=0``;
with a memory torso the defaults are 20 learned steps after 10 of burn-in,
and ``sequence_length=1`` is refused (it would train no memory).

The n-step target of step ``t`` sums the rewards up to ``n_step`` steps or
to the end of its episode, whichever comes first, and bootstraps from the
``final_observation`` of its last step (the observation before any
auto-reset) unless that step terminated; truncation bootstraps.

Data-parallel (``DQNConfig.num_devices``): each device steps its share of the
env copies and keeps their replay (the buffer is split along its env axis);
gradient steps sample the global batch and split it over the devices
(:mod:`memorax.algorithms.data_parallel`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from memorax.algorithms.agent_checks import check_agent_arguments, resolve_replay_sequences
from memorax.algorithms.argument_checks import (
    check_sequence_fields,
    is_int,
    is_number,
    num_iterations,
)
from memorax.algorithms.data_parallel import (
    check_batch_size_field,
    check_num_devices_field,
    data_parallel_for,
    place,
    put_replicated,
    split,
)
from memorax.algorithms.epsilon_greedy import epsilon_greedy, linear_epsilon
from memorax.algorithms.evaluate_call import evaluate_agent
from memorax.algorithms.evaluation import EvaluationResult
from memorax.algorithms.greedy_evaluation import evaluate_greedy
from memorax.algorithms.metrics_stream import MetricsCallback, emit
from memorax.algorithms.q_network_checks import check_discrete_q_network
from memorax.buffers import BufferState, SequenceBuffer
from memorax.envs import Discrete, Environment, EpisodeStatistics
from memorax.networks import is_sequence_model

__all__ = ["DQN", "DQN_METRIC_NAMES", "DQNConfig", "DQNState"]

DQN_METRIC_NAMES = (
    "loss",
    "q_value",
    "epsilon",
    "episode_return",
    "episode_length",
    "episode_count",
    "env_steps",
    "gradient_steps",
    "update",
)
"""Keys of ``DQNState.metrics``, one value per iteration (``num_steps`` env steps per copy).

``loss`` (``0.5 * (Q(o, a) - G)^2``) and ``q_value`` (the mean ``Q(o, a)`` of
the sampled steps) are means over the iteration's gradient steps, NaN while
learning has not started; ``epsilon`` is the exploration rate of the
iteration's steps; ``episode_return`` / ``episode_length`` are means over the
episodes that ended in the iteration (NaN when none) and ``episode_count``
how many ended; ``env_steps``, ``gradient_steps`` and ``update`` (iterations)
are the counters after the iteration.
"""


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN hyperparameters.

    Attributes:
        num_envs: env copies stepped together; must equal the env's ``num_envs``.
        num_steps: steps per env copy in each iteration, before its gradient steps.
        gradient_steps: gradient steps per iteration (once learning has started).
        batch_size: sequences per gradient step.
        buffer_size: steps kept in replay, all env copies together; must be a
            multiple of ``num_envs`` (each copy keeps ``buffer_size / num_envs``).
        learning_starts: env steps (all copies) before the first gradient step.
        gamma: discount factor.
        n_step: rewards summed per target before bootstrapping.
        double_q: pick the bootstrap action with the online network and value it
            with the target network (van Hasselt et al., 2016).
        target_update_interval: copy the online parameters to the target network
            every this many gradient steps.
        epsilon_start, epsilon_end: exploration rate at env step 0 and after
            ``epsilon_decay_steps`` env steps (all copies counted); linear between.
        epsilon_decay_steps: env steps over which epsilon decays (0: ``epsilon_end``).
        max_grad_norm: clip the gradient to this global norm (``None``: no clipping).
        sequence_length: steps per sampled sequence that are learned from.
            ``None`` (default): 1 for a feed-forward network, 20 for a memory
            torso (:data:`~memorax.algorithms.agent_checks.MEMORY_SEQUENCE_LENGTH`);
            a memory torso needs at least 2, or it learns nothing to remember.
        burn_in_length: recurrent agents only: steps before those that only
            warm up the carry. ``None`` (default): 0 for a feed-forward
            network, 10 for a memory torso. The agent's ``config`` holds the
            resolved values.
        num_devices: ``None`` (default): train on one device. An int: train
            data-parallel over the first ``num_devices`` of ``jax.devices()``,
            as :attr:`memorax.algorithms.PPOConfig.num_devices`. Each device
            steps ``num_envs / num_devices`` env copies and keeps their replay
            (the buffer is split along its env axis); each gradient step
            samples ``batch_size`` sequences from the whole buffer, exactly as
            on one device, and splits them over the devices (so ``num_envs``
            and ``batch_size`` must be multiples of it); parameters are
            replicated and the gradient is the global batch mean. Same key and
            config give the single-device result up to float rounding.
            JAX-native envs only.
    """

    num_envs: int
    num_steps: int = 1
    gradient_steps: int = 1
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    gamma: float = 0.99
    n_step: int = 1
    double_q: bool = True
    target_update_interval: int = 500
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 50_000
    max_grad_norm: float | None = 10.0
    sequence_length: int | None = None
    burn_in_length: int | None = None
    num_devices: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "num_envs": (is_int, 1, None, "a positive integer"),
            "num_steps": (is_int, 1, None, "a positive integer"),
            "gradient_steps": (is_int, 0, None, "a non-negative integer"),
            "batch_size": (is_int, 1, None, "a positive integer"),
            "buffer_size": (is_int, 1, None, "a positive integer"),
            "learning_starts": (is_int, 0, None, "a non-negative integer"),
            "n_step": (is_int, 1, None, "a positive integer"),
            "target_update_interval": (is_int, 1, None, "a positive integer"),
            "epsilon_decay_steps": (is_int, 0, None, "a non-negative integer"),
            "gamma": (is_number, 0.0, 1.0, "in (0, 1]"),
            "epsilon_start": (is_number, 0.0, 1.0, "in [0, 1]"),
            "epsilon_end": (is_number, 0.0, 1.0, "in [0, 1]"),
        }
        for name, (kind, low, high, what) in checks.items():
            value = getattr(self, name)
            ok = kind(value) and value >= low and (high is None or value <= high)
            if name == "gamma":
                ok = ok and value > low
            if not ok:
                raise ValueError(f"DQNConfig: {name} must be {what}, got {value!r}.")
        if not isinstance(self.double_q, bool):
            raise ValueError(f"DQNConfig: double_q must be a bool, got {self.double_q!r}.")
        value = self.max_grad_norm
        if not (value is None or (is_number(value) and value > 0)):
            raise ValueError(
                f"DQNConfig: max_grad_norm must be a positive number or None, got {value!r}."
            )
        check_sequence_fields("DQNConfig", self)
        check_num_devices_field("DQNConfig", self.num_envs, self.num_devices)
        check_batch_size_field("DQNConfig", self.batch_size, self.num_devices)
        if self.buffer_size % self.num_envs:
            raise ValueError(
                f"DQNConfig: buffer_size={self.buffer_size} must be a multiple of num_envs="
                f"{self.num_envs} (every env copy keeps the same number of steps)."
            )
        if self.buffer_size // self.num_envs < self.stored_sequence_length:
            raise ValueError(
                f"DQNConfig: buffer_size / num_envs = {self.buffer_size // self.num_envs} steps "
                f"per env copy cannot hold one sampled sequence of burn_in_length + "
                f"sequence_length + n_step - 1 = {self.stored_sequence_length} steps; raise "
                "buffer_size."
            )

    @property
    def steps_per_iteration(self) -> int:
        """Env steps (all copies) per iteration: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def stored_sequence_length(self) -> int:
        """Steps per sampled sequence: ``burn_in_length + sequence_length + n_step - 1``
        (unset lengths counted as 1 and 0 until the agent resolves them)."""
        return (self.burn_in_length or 0) + (self.sequence_length or 1) + self.n_step - 1


class DQNState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds).

    Attributes:
        params, target_params: Flax variables of the online and target networks.
        optimizer_state: optax state of the online network.
        buffer_state: the replay buffer's :class:`~memorax.buffers.BufferState`.
        env_state: the (episode-statistics wrapped) env state.
        observation: ``[num_envs, *obs_shape]`` the next observation to act on.
        episode_start: ``[num_envs]`` bool, ``observation`` starts an episode.
        previous_action: ``[num_envs]`` int32, zero at an episode start.
        previous_reward: ``[num_envs]`` float32, zero at an episode start.
        carry: the acting network's torso carry (``None`` for feed-forward).
        env_steps: int32, env steps taken in training, all copies counted.
        gradient_steps: int32, gradient steps taken.
        update_count: int32, iterations done.
        metrics: dict of ``[num_iterations]`` arrays from the last ``train`` call
            (keys: :data:`DQN_METRIC_NAMES`); ``[0]`` arrays before any training.
        evaluation: the :class:`~memorax.algorithms.EvaluationResult` of the
            last ``evaluate`` call (empty before any).
    """

    params: Any
    target_params: Any
    optimizer_state: Any
    buffer_state: BufferState
    env_state: Any
    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    carry: Any
    env_steps: jax.Array
    gradient_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


class DQN:
    """DQN for discrete-action envs, JAX-native or callback.

    Args:
        config: :class:`DQNConfig`.
        env: a batched env from ``make(...)`` with ``num_envs == config.num_envs``
            and a ``Discrete`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        network: a :class:`~memorax.networks.Network` with a
            :class:`~memorax.networks.DiscreteQNetwork` head
            (``DiscreteQNetwork(n, dueling=True)`` for a dueling head).
        optimizer: an optax transformation (gradient clipping by
            ``config.max_grad_norm`` is applied before it).
        metrics_callback: optional host function called after every iteration
            with a dict of its metrics (:data:`DQN_METRIC_NAMES` plus ``"seed"``).

    Example::

        env, env_params = make("gymnax::CartPole-v1", num_envs=8)
        agent = DQN(DQNConfig(num_envs=8), env, env_params, network, optax.adam(1e-3))
        state = agent.init(jax.random.key(0))
        state = agent.train(jax.random.key(1), state, num_steps=50_000)
        state = agent.evaluate(jax.random.key(2), state)
    """

    def __init__(
        self,
        config: DQNConfig,
        env: Environment,
        env_params: Any,
        network: nn.Module,
        optimizer: optax.GradientTransformation,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        check_agent_arguments(
            "DQN", config, DQNConfig, env, networks={}, optimizers={"optimizer": optimizer}
        )
        check_discrete_q_network(env, network, "DQN")
        torso = getattr(network, "torso", None)
        recurrent = is_sequence_model(torso)
        config = resolve_replay_sequences("DQN", config, recurrent, type(torso).__name__)
        self.config = config
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        self.network = network
        self.optimizer = optimizer
        self.metrics_callback = metrics_callback
        self.recurrent = recurrent
        self.buffer = SequenceBuffer(
            num_envs=config.num_envs,
            capacity=config.buffer_size // config.num_envs,
            sequence_length=config.stored_sequence_length,
        )
        self.data_parallel = data_parallel_for("DQN", env, config.num_envs, config.num_devices)
        self._train_jit = jax.jit(self._train, static_argnames="num_iterations")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> DQNState:
        """Initial parameters (target = online), optimizer state, an empty buffer, a reset env.

        Args:
            key: a PRNG key (vmap over keys to initialise several seeds).
        """
        network_key, env_key = jax.random.split(key)
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(env_key, self.env_params)
        start = jnp.ones((num_envs,), bool)
        previous_action = jnp.zeros((num_envs,), jnp.int32)
        previous_reward = jnp.zeros((num_envs,), jnp.float32)
        carry = self.network.initialize_carry(num_envs)
        params = self.network.init(
            network_key, observation[:, None], start[:, None], carry,
            previous_action[:, None], previous_reward[:, None],
        )  # fmt: skip
        example = {
            "observation": observation[0],
            "episode_start": start[0],
            "previous_action": previous_action[0],
            "previous_reward": previous_reward[0],
            "action": previous_action[0],
            "reward": previous_reward[0],
            "terminated": start[0],
            "done": start[0],
            "final_observation": observation[0],
        }
        state = DQNState(
            params=params,
            target_params=params,
            optimizer_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(example),
            env_state=env_state,
            observation=observation,
            episode_start=start,
            previous_action=previous_action,
            previous_reward=previous_reward,
            carry=carry,
            env_steps=jnp.zeros((), jnp.int32),
            gradient_steps=jnp.zeros((), jnp.int32),
            update_count=jnp.zeros((), jnp.int32),
            metrics=_empty_metrics(),
            evaluation=EvaluationResult.empty(num_envs, 1),
        )
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def train(self, key: jax.Array, state: DQNState, num_steps: int) -> DQNState:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` iterations, warning
        when ``num_steps`` is not a multiple of that. ``num_steps`` is static.
        ``jax.vmap(agent.train, in_axes=(0, 0, None))`` trains several seeds of
        a JAX-native env at once.

        Returns:
            The new state; ``state.metrics`` holds ``[num_iterations]`` arrays,
            see :data:`DQN_METRIC_NAMES`.
        """
        iterations = num_iterations("DQN.train", num_steps, self.config.steps_per_iteration)
        metrics = put_replicated(self.data_parallel, _empty_metrics())
        return self._train_jit(key, state.replace(metrics=metrics), num_iterations=iterations)

    def evaluate(
        self,
        key: jax.Array,
        state: DQNState,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> DQNState:
        """Run complete episodes with the greedy policy ``argmax_a Q(o, a)``.

        Results go to ``state.evaluation``; parameters, the buffer, optimizer
        state, counters and training metrics are never changed. The training
        env is handled as in :meth:`memorax.algorithms.PPO.evaluate` (pass
        ``env=`` to evaluate on a separate env with the same spaces).
        """
        return evaluate_agent(
            "DQN", key, state, state.params,
            num_episodes=num_episodes, max_steps=max_steps, env=env, env_params=env_params,
            training_env=self.env.env, training_env_params=self.env_params,
            evaluate_jit=self._evaluate_jit, reset_jit=self._reset_jit,
        )  # fmt: skip

    def reset_env(self, key: jax.Array, state: DQNState) -> DQNState:
        """Start fresh episodes in the training env, keeping parameters, buffer and counters."""
        return self._reset_jit(key, state)

    # ------------------------------------------------------------------ training

    def _train(self, key: jax.Array, state: DQNState, num_iterations: int) -> DQNState:
        config = self.config
        network, env, env_params = self.network, self.env, self.env_params
        num_envs, num_steps = config.num_envs, config.num_steps
        data_parallel = self.data_parallel

        def iteration(state: DQNState, iteration_key: jax.Array):
            state = place(data_parallel, state, _ENV_AXIS_FIELDS)
            rollout_key, learn_key = jax.random.split(iteration_key)
            epsilon = linear_epsilon(
                state.env_steps, config.epsilon_start, config.epsilon_end,
                config.epsilon_decay_steps,
            )  # fmt: skip

            # 1. Act epsilon-greedily in every env copy, num_steps times.
            def env_step(runner: tuple, step_key: jax.Array):
                env_state, observation, start, prev_action, prev_reward, carry = runner
                action_key, env_key = jax.random.split(step_key)
                carry, q = _apply(
                    network, state.params, observation[:, None], start[:, None], carry,
                    prev_action[:, None], prev_reward[:, None],
                )  # fmt: skip
                action = epsilon_greedy(action_key, q[:, 0], epsilon)
                step = env.step(env_key, env_state, self._env_action(action), env_params)
                done = step.terminated | step.truncated
                transition = {
                    "observation": observation,
                    "episode_start": start,
                    "previous_action": prev_action,
                    "previous_reward": prev_reward,
                    "action": action,
                    "reward": step.reward.astype(jnp.float32),
                    "terminated": step.terminated,
                    "done": done,
                    "final_observation": step.info["final_observation"],
                }
                runner = (
                    step.state,
                    step.observation,
                    done,
                    jnp.where(done, 0, action),
                    jnp.where(done, 0.0, step.reward),
                    carry,
                )
                outputs = (transition, step.info["episode"])
                return split(data_parallel, runner), split(data_parallel, outputs)

            runner = (state.env_state, state.observation, state.episode_start,
                      state.previous_action, state.previous_reward, state.carry)  # fmt: skip
            runner, (rollout, episode) = jax.lax.scan(
                env_step, runner, jax.random.split(rollout_key, num_steps)
            )

            # 2. Store the steps, batch-major [num_envs, num_steps, ...]; each device
            # writes the steps of its own env copies into its part of the buffer.
            steps = split(data_parallel, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rollout))
            buffer_state = split(data_parallel, self.buffer.add(state.buffer_state, steps))
            env_steps = state.env_steps + num_envs * num_steps

            # 3. Gradient steps, once the buffer and learning_starts allow.
            ready = self.buffer.can_sample(buffer_state) & (env_steps >= config.learning_starts)

            def gradient_step(learner: tuple, step_key: jax.Array):
                params, target_params, opt_state, count = learner
                # The same global sample as on one device; each device gathers the
                # sequences of its env copies, then the batch is split over devices.
                sample = self.buffer.sample(buffer_state, step_key, config.batch_size)
                experience = split(data_parallel, sample.experience)
                (loss, q_value), grads = jax.value_and_grad(self._loss, has_aux=True)(
                    params, target_params, experience
                )
                if config.max_grad_norm is not None:
                    norm = optax.tree.norm(grads)
                    scale = jnp.minimum(1.0, config.max_grad_norm / (norm + 1e-6))
                    grads = jax.tree.map(lambda g: g * scale, grads)
                updates, new_opt_state = self.optimizer.update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
                # Before learning starts the step is computed but not applied.
                params, opt_state = _select(ready, (new_params, new_opt_state), (params, opt_state))
                count = count + ready.astype(jnp.int32)
                sync = ready & (count % config.target_update_interval == 0)
                target_params = _select(sync, params, target_params)
                return (params, target_params, opt_state, count), (loss, q_value)

            learner = (state.params, state.target_params, state.optimizer_state,
                       state.gradient_steps)  # fmt: skip
            if config.gradient_steps:
                learner, (losses, q_values) = jax.lax.scan(
                    gradient_step, learner, jax.random.split(learn_key, config.gradient_steps)
                )
                loss = jnp.where(ready, jnp.mean(losses), jnp.nan)
                q_value = jnp.where(ready, jnp.mean(q_values), jnp.nan)
            else:
                loss = q_value = jnp.full((), jnp.nan)
            params, target_params, opt_state, gradient_steps = learner

            # 4. Metrics of this iteration.
            episode_count = jnp.sum(episode["done"], dtype=jnp.int32)
            per_episode = jnp.where(episode_count > 0, 1.0 / episode_count, jnp.nan)
            update_count = state.update_count + 1
            metrics = {
                "loss": loss,
                "q_value": q_value,
                "epsilon": epsilon,
                "episode_return": jnp.sum(episode["return"]) * per_episode,
                "episode_length": jnp.sum(episode["length"], dtype=jnp.float32) * per_episode,
                "episode_count": episode_count,
                "env_steps": env_steps,
                "gradient_steps": gradient_steps,
                "update": update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)

            env_state, observation, start, prev_action, prev_reward, carry = runner
            state = state.replace(
                params=params,
                target_params=target_params,
                optimizer_state=opt_state,
                buffer_state=buffer_state,
                env_state=env_state,
                observation=observation,
                episode_start=start,
                previous_action=prev_action,
                previous_reward=prev_reward,
                carry=carry,
                env_steps=env_steps,
                gradient_steps=gradient_steps,
                update_count=update_count,
            )
            return state, metrics

        state, metrics = jax.lax.scan(iteration, state, jax.random.split(key, num_iterations))
        return place(data_parallel, state.replace(metrics=metrics), _ENV_AXIS_FIELDS)

    def _q_values(self, params: Any, data: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """Per step of ``[B, L]`` sequences: ``Q(observation_t)`` and ``Q(final_observation_t)``.

        Both ``[B, L, num_actions]``; the second uses the carry right after step
        ``t`` (before any reset), so truncated episodes bootstrap with the
        memory they had. Scanned one step at a time from the initial carry.
        """
        network = self.network
        batch = data["observation"].shape[0]

        def one_step(carry: Any, step: dict[str, jax.Array]):
            carry, q = _apply(
                network, params, step["observation"][:, None], step["episode_start"][:, None],
                carry, step["previous_action"][:, None], step["previous_reward"][:, None],
            )  # fmt: skip
            _, next_q = _apply(
                network, params, step["final_observation"][:, None],
                jnp.zeros((batch, 1), bool), carry,
                step["action"][:, None], step["reward"][:, None],
            )  # fmt: skip
            return carry, (q[:, 0], next_q[:, 0])

        time_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
        _, (q, next_q) = jax.lax.scan(one_step, network.initialize_carry(batch), time_major)
        return jnp.swapaxes(q, 0, 1), jnp.swapaxes(next_q, 0, 1)

    def _loss(
        self, params: Any, target_params: Any, data: dict[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        """``0.5 * mean (Q(o_t, a_t) - G_t)^2`` over the learned steps, and mean ``Q(o_t, a_t)``."""
        config = self.config
        # Set by the constructor for the network (never None on an agent's config).
        start, length = config.burn_in_length or 0, config.sequence_length or 1
        q, online_next = self._q_values(params, data)
        _, target_next = self._q_values(target_params, data)
        if config.double_q:
            best = jnp.argmax(online_next, axis=-1)
            bootstrap = jnp.take_along_axis(target_next, best[..., None], axis=-1)[..., 0]
        else:
            bootstrap = jnp.max(target_next, axis=-1)
        targets = jax.lax.stop_gradient(
            n_step_targets(
                data["reward"], bootstrap, data["terminated"], data["done"],
                config.gamma, config.n_step,
            )[:, start : start + length]
        )  # fmt: skip
        # Burn-in steps ran through the network too, but only to warm up the carry.
        actions = data["action"][:, start : start + length]
        q_taken = jnp.take_along_axis(q[:, start : start + length], actions[..., None], axis=-1)
        q_taken = q_taken[..., 0]
        return 0.5 * jnp.mean(jnp.square(q_taken - targets)), jnp.mean(q_taken)

    # ------------------------------------------------------------------ evaluation

    def _evaluate(
        self, key: jax.Array, params: Any, env_params: Any, *,
        eval_env: Environment, num_episodes: int, max_steps: int,
    ) -> EvaluationResult:  # fmt: skip
        return evaluate_greedy(
            key, self.network, params, eval_env, env_params, self._env_action,
            num_episodes, max_steps,
        )  # fmt: skip

    def _reset_training_env(self, key: jax.Array, state: DQNState) -> DQNState:
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(key, self.env_params)
        state = state.replace(
            env_state=env_state,
            observation=observation,
            episode_start=jnp.ones((num_envs,), bool),
            previous_action=jnp.zeros((num_envs,), jnp.int32),
            previous_reward=jnp.zeros((num_envs,), jnp.float32),
            carry=self.network.initialize_carry(num_envs),
        )
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def _env_action(self, action: jax.Array) -> jax.Array:
        space = self.env.action_space
        if not isinstance(space, Discrete):  # checked at construction; narrows the type
            raise TypeError(f"DQN: unsupported action space {space}.")
        return action.astype(space.dtype) + space.start


def n_step_targets(
    rewards: jax.Array,
    bootstrap_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    n_step: int,
) -> jax.Array:
    """n-step Q-learning targets for every start of ``[B, L]`` stored sequences.

    ``G_t = sum_{k < m} gamma^k r_{t+k} + gamma^m (1 - terminated_{t+m-1}) b_{t+m-1}``
    where ``m <= n_step`` stops at the first step that ends its episode
    (``done``) and ``b_j`` is the bootstrap value of ``final_observation_j``.
    Starts too close to the end for ``n_step`` steps use what is left (the
    learner only reads starts that have all of them).

    Args:
        rewards, bootstrap_values: ``[B, L]`` float.
        terminated, done: ``[B, L]`` bool.
        gamma: discount factor.
        n_step: steps summed at most.

    Returns:
        ``[B, L]`` float32 targets.
    """
    length = rewards.shape[1]
    rewards = jnp.asarray(rewards, jnp.float32)
    continuing = 1.0 - jnp.asarray(terminated, jnp.float32)
    ended = jnp.asarray(done, bool)

    def shifted(x: jax.Array, k: int, fill: Any) -> jax.Array:
        """``x[:, t + k]``, with ``fill`` past the end."""
        pad = jnp.full((x.shape[0], k), fill, x.dtype)
        return jnp.concatenate([x[:, k:], pad], axis=1)[:, :length]

    target = jnp.zeros_like(rewards)
    alive = jnp.ones_like(rewards)  # 1 while steps t..t+k-1 stayed in t's episode
    for k in range(n_step):
        last = k == n_step - 1
        reward_k = shifted(rewards, k, 0.0)
        target = target + alive * gamma**k * reward_k
        # Step t+k is the last one summed if it ends the episode, is the n-th,
        # or is the last stored step.
        stop = shifted(ended, k, True) | last | (jnp.arange(length) + k >= length - 1)
        bootstrap = (
            gamma ** (k + 1) * shifted(continuing, k, 0.0) * shifted(bootstrap_values, k, 0.0)
        )
        target = target + alive * jnp.where(stop, bootstrap, 0.0)
        alive = alive * (1.0 - stop.astype(jnp.float32))
    return target


_ENV_AXIS_FIELDS = ("env_state", "observation", "episode_start", "previous_action",
                    "previous_reward", "carry", "buffer_state")  # fmt: skip
"""``DQNState`` fields with a leading env axis (the replay buffer's too), split over
devices when data-parallel."""


def _select(flag: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), on_true, on_false)


def _empty_metrics() -> dict[str, jax.Array]:
    integer = {"episode_count", "env_steps", "gradient_steps", "update"}
    return {
        name: jnp.zeros((0,), jnp.int32 if name in integer else jnp.float32)
        for name in DQN_METRIC_NAMES
    }


def _apply(network: nn.Module, params: Any, *args: Any) -> tuple[Any, Any]:
    """``network.apply`` typed as what a Network returns: ``(carry, output)``."""
    return network.apply(params, *args)
