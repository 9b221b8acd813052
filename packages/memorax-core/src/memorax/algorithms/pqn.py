"""Parallelised Q-learning, PQN (Gallici et al., 2024), with or without memory.

No replay buffer and no target network: many env copies act epsilon-greedily
with the current network, each rollout gets Peng's Q(lambda) targets
(:mod:`memorax.algorithms.q_lambda`, scanned backwards) from the same
network, then epochs of minibatches regress ``Q(o_t, a_t)`` onto them. One
jitted function does a whole training call, read top to bottom, like
:mod:`memorax.algorithms.ppo`.

PQN relies on normalisation in the network to stay stable without a target
network; the paper puts a ``LayerNorm`` after every hidden layer. That is
the torso's job here (e.g. a small Dense -> LayerNorm -> ReLU module as the
torso), so the choice stays the user's.

Data-parallel (``PQNConfig.num_devices``): env copies, rollouts and
minibatches are split over the devices, the network is replicated
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

from memorax.algorithms.agent_checks import check_agent_arguments
from memorax.algorithms.argument_checks import is_int, is_number, num_iterations
from memorax.algorithms.data_parallel import (
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
from memorax.algorithms.q_lambda import q_lambda_returns
from memorax.algorithms.q_network_checks import check_discrete_q_network
from memorax.envs import Discrete, Environment, EpisodeStatistics
from memorax.networks import is_sequence_model

__all__ = ["PQN", "PQN_METRIC_NAMES", "PQNConfig", "PQNState"]

PQN_METRIC_NAMES = (
    "loss",
    "q_value",
    "epsilon",
    "episode_return",
    "episode_length",
    "episode_count",
    "env_steps",
    "update",
)
"""Keys of ``PQNState.metrics``, one value per update.

``loss`` is the mean over the update's minibatch steps of
``0.5 * (Q(o, a) - G)^2``; ``q_value`` is the mean ``Q(o_t, a_t)`` of the
rollout as seen when acting; ``epsilon`` the exploration rate used in the
rollout; ``episode_return`` / ``episode_length`` are means over the episodes
that ended during the rollout (NaN when none) and ``episode_count`` how many
ended; ``env_steps`` and ``update`` are the counters after the update.
"""


@dataclasses.dataclass(frozen=True)
class PQNConfig:
    """PQN hyperparameters.

    Attributes:
        num_envs: env copies stepped together; must equal the env's ``num_envs``.
        num_steps: steps per env copy in each rollout (one update per rollout).
        gamma: discount factor.
        q_lambda: Q(lambda)'s mixing of one-step (0) and multi-step (1) targets.
        num_minibatches: minibatches per epoch. Feed-forward agents split the
            ``num_envs * num_steps`` transitions, recurrent agents split the
            ``num_envs`` sequences, so that number must be divisible by it.
        update_epochs: passes over each rollout.
        epsilon_start, epsilon_end: exploration rate at env step 0 and after
            ``epsilon_decay_steps`` env steps (all copies counted); linear between.
        epsilon_decay_steps: env steps over which epsilon decays (0: ``epsilon_end``
            from the start).
        max_grad_norm: clip the gradient to this global norm (``None``: no clipping).
        burn_in_length: recurrent agents only: the first ``burn_in_length``
            steps of each training sequence only refresh the carry (no loss).
        num_devices: ``None`` (default): train on one device. An int: train
            data-parallel over the first ``num_devices`` of ``jax.devices()``,
            as :attr:`memorax.algorithms.PPOConfig.num_devices`: env copies,
            rollouts and minibatches are split evenly over the devices (so
            ``num_envs`` must be a multiple of it), parameters and the
            optimizer state are replicated, the gradient is the global
            minibatch mean. Same key and config give the single-device result
            up to float rounding. JAX-native envs only.
    """

    num_envs: int
    num_steps: int = 64
    gamma: float = 0.99
    q_lambda: float = 0.65
    num_minibatches: int = 4
    update_epochs: int = 4
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 100_000
    max_grad_norm: float | None = 10.0
    burn_in_length: int = 0
    num_devices: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "num_envs": (is_int, 1, None, "a positive integer"),
            "num_steps": (is_int, 1, None, "a positive integer"),
            "num_minibatches": (is_int, 1, None, "a positive integer"),
            "update_epochs": (is_int, 1, None, "a positive integer"),
            "epsilon_decay_steps": (is_int, 0, None, "a non-negative integer"),
            "burn_in_length": (is_int, 0, None, "a non-negative integer"),
            "gamma": (is_number, 0.0, 1.0, "in (0, 1]"),
            "q_lambda": (is_number, 0.0, 1.0, "in [0, 1]"),
            "epsilon_start": (is_number, 0.0, 1.0, "in [0, 1]"),
            "epsilon_end": (is_number, 0.0, 1.0, "in [0, 1]"),
        }
        for name, (kind, low, high, what) in checks.items():
            value = getattr(self, name)
            ok = kind(value) and value >= low and (high is None or value <= high)
            if name == "gamma":
                ok = ok and value > low
            if not ok:
                raise ValueError(f"PQNConfig: {name} must be {what}, got {value!r}.")
        value = self.max_grad_norm
        if not (value is None or (is_number(value) and value > 0)):
            raise ValueError(
                f"PQNConfig: max_grad_norm must be a positive number or None, got {value!r}."
            )
        check_num_devices_field("PQNConfig", self.num_envs, self.num_devices)
        if self.burn_in_length >= self.num_steps:
            raise ValueError(
                f"PQNConfig: burn_in_length={self.burn_in_length} must be smaller than "
                f"num_steps={self.num_steps}, or no step of a sequence is left to learn from."
            )
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(
                f"PQNConfig: num_envs * num_steps = {self.steps_per_update} transitions cannot "
                f"be split into num_minibatches={self.num_minibatches} equal minibatches; "
                "choose num_minibatches dividing it."
            )

    @property
    def steps_per_update(self) -> int:
        """Env steps (all copies) collected per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps


class PQNState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds).

    Attributes:
        params: Flax variables of the Q-network.
        optimizer_state: its optax state.
        env_state: the (episode-statistics wrapped) env state.
        observation: ``[num_envs, *obs_shape]`` the next observation to act on.
        episode_start: ``[num_envs]`` bool, ``observation`` starts an episode.
        previous_action: ``[num_envs]`` int32, zero at an episode start.
        previous_reward: ``[num_envs]`` float32, zero at an episode start.
        carry: the torso's carry (``None`` for feed-forward).
        env_steps: int32, env steps taken in training, all copies counted.
        update_count: int32, updates done.
        metrics: dict of ``[num_updates]`` arrays from the last ``train`` call
            (keys: :data:`PQN_METRIC_NAMES`); ``[0]`` arrays before any training.
        evaluation: the :class:`~memorax.algorithms.EvaluationResult` of the
            last ``evaluate`` call (empty before any).
    """

    params: Any
    optimizer_state: Any
    env_state: Any
    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    carry: Any
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
    q_value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_observation: jax.Array
    carry: Any
    episode: dict[str, jax.Array]


class _Batch(struct.PyTreeNode):
    """Training data, batch-major ``[num_envs, num_steps, ...]`` (or flattened)."""

    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    action: jax.Array
    target: jax.Array


class PQN:
    """PQN for discrete-action envs, JAX-native or callback.

    Args:
        config: :class:`PQNConfig`.
        env: a batched env from ``make(...)`` with ``num_envs == config.num_envs``
            and a ``Discrete`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        network: a :class:`~memorax.networks.Network` with a
            :class:`~memorax.networks.DiscreteQNetwork` head (``dueling`` allowed).
        optimizer: an optax transformation (gradient clipping by
            ``config.max_grad_norm`` is applied before it).
        metrics_callback: optional host function called after every update
            with a dict of that update's metrics (:data:`PQN_METRIC_NAMES`
            plus ``"seed"``, the index along a ``jax.vmap`` over seeds).

    Example::

        env, env_params = make("gymnax::CartPole-v1", num_envs=16)
        agent = PQN(PQNConfig(num_envs=16), env, env_params, network, optax.adam(3e-4))
        state = agent.init(jax.random.key(0))
        state = agent.train(jax.random.key(1), state, num_steps=100_000)
        state = agent.evaluate(jax.random.key(2), state)
        state.evaluation.returns                 # [num_envs, num_episodes]
    """

    def __init__(
        self,
        config: PQNConfig,
        env: Environment,
        env_params: Any,
        network: nn.Module,
        optimizer: optax.GradientTransformation,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        check_agent_arguments(
            "PQN", config, PQNConfig, env, networks={}, optimizers={"optimizer": optimizer}
        )
        check_discrete_q_network(env, network, "PQN")
        self.config = config
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        self.network = network
        self.optimizer = optimizer
        self.metrics_callback = metrics_callback
        self.recurrent = is_sequence_model(getattr(network, "torso", None))
        if self.recurrent and config.num_envs % config.num_minibatches:
            raise ValueError(
                f"PQN: a recurrent agent trains on whole env sequences, so num_envs="
                f"{config.num_envs} must be divisible by num_minibatches="
                f"{config.num_minibatches}."
            )
        if config.burn_in_length and not self.recurrent:
            raise ValueError(
                "PQN: burn_in_length > 0 needs a recurrent (SequenceModel) torso; feed-forward "
                "agents have no carry to burn in. Set burn_in_length=0."
            )
        self.data_parallel = data_parallel_for("PQN", env, config.num_envs, config.num_devices)
        self._train_jit = jax.jit(self._train, static_argnames="num_updates")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> PQNState:
        """Initial parameters, optimizer state and a freshly reset env.

        Args:
            key: a PRNG key (vmap over keys to initialise several seeds).

        Returns:
            A :class:`PQNState` with zero counters, empty metrics and evaluation.
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
        state = PQNState(
            params=params,
            optimizer_state=self.optimizer.init(params),
            env_state=env_state,
            observation=observation,
            episode_start=start,
            previous_action=previous_action,
            previous_reward=previous_reward,
            carry=carry,
            env_steps=jnp.zeros((), jnp.int32),
            update_count=jnp.zeros((), jnp.int32),
            metrics=_empty_metrics(),
            evaluation=EvaluationResult.empty(num_envs, 1),
        )
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def train(self, key: jax.Array, state: PQNState, num_steps: int) -> PQNState:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` updates, warning
        when ``num_steps`` is not a multiple of that. ``num_steps`` is static:
        each new value compiles once. ``jax.vmap(agent.train, in_axes=(0, 0,
        None))`` trains several seeds of a JAX-native env at once.

        Returns:
            The new state; ``state.metrics`` holds ``[num_updates]`` arrays
            (``[seeds, num_updates]`` under vmap), see :data:`PQN_METRIC_NAMES`.
        """
        num_updates = num_iterations("PQN.train", num_steps, self.config.steps_per_update, "update")
        metrics = put_replicated(self.data_parallel, _empty_metrics())
        return self._train_jit(key, state.replace(metrics=metrics), num_updates=num_updates)

    def evaluate(
        self,
        key: jax.Array,
        state: PQNState,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> PQNState:
        """Run complete episodes with the greedy policy ``argmax_a Q(o, a)``.

        Each env copy records its first ``num_episodes`` episodes in
        ``state.evaluation``. Parameters, optimizer state, counters and
        training metrics are never changed. The training env is handled as in
        :meth:`memorax.algorithms.PPO.evaluate`: a JAX-native one is reset
        into a separate state; a callback one is reset in place and then
        re-reset for training (pass ``env=`` to evaluate on a separate env).

        Args:
            key: PRNG key for the evaluation env.
            state: the agent state.
            num_episodes: episodes recorded per env copy.
            env, env_params: optional separate evaluation env with the same spaces.
            max_steps: steps per env copy at most (unfinished episodes: NaN returns).

        Returns:
            ``state`` with ``evaluation`` replaced.
        """
        return evaluate_agent(
            "PQN", key, state, state.params,
            num_episodes=num_episodes, max_steps=max_steps, env=env, env_params=env_params,
            training_env=self.env.env, training_env_params=self.env_params,
            evaluate_jit=self._evaluate_jit, reset_jit=self._reset_jit,
        )  # fmt: skip

    def reset_env(self, key: jax.Array, state: PQNState) -> PQNState:
        """Start fresh episodes in the training env, keeping everything the agent learned."""
        return self._reset_jit(key, state)

    # ------------------------------------------------------------------ training

    def _train(self, key: jax.Array, state: PQNState, num_updates: int) -> PQNState:
        config = self.config
        network, env, env_params = self.network, self.env, self.env_params
        num_envs, num_steps = config.num_envs, config.num_steps
        data_parallel = self.data_parallel

        def update_step(state: PQNState, update_key: jax.Array):
            state = place(data_parallel, state, _ENV_AXIS_FIELDS)
            rollout_key, epochs_key = jax.random.split(update_key)
            initial_carry = state.carry
            epsilon = linear_epsilon(
                state.env_steps, config.epsilon_start, config.epsilon_end,
                config.epsilon_decay_steps,
            )  # fmt: skip

            # 1. Rollout: act epsilon-greedily in every env copy, num_steps times.
            def env_step(runner: tuple, step_keys: jax.Array):
                env_state, observation, start, prev_action, prev_reward, carry = runner
                action_key, env_key = step_keys
                carry, q = _apply(
                    network, state.params, observation[:, None], start[:, None], carry,
                    prev_action[:, None], prev_reward[:, None],
                )  # fmt: skip
                q = q[:, 0]
                action = epsilon_greedy(action_key, q, epsilon)
                step = env.step(env_key, env_state, self._env_action(action), env_params)
                done = step.terminated | step.truncated
                transition = _Transition(
                    observation=observation,
                    episode_start=start,
                    previous_action=prev_action,
                    previous_reward=prev_reward,
                    action=action,
                    q_value=jnp.take_along_axis(q, action[:, None], axis=-1)[:, 0],
                    reward=step.reward,
                    terminated=step.terminated,
                    done=done,
                    final_observation=step.info["final_observation"],
                    carry=carry,
                    episode=step.info["episode"],
                )
                runner = (
                    step.state,
                    step.observation,
                    done,
                    jnp.where(done, 0, action),
                    jnp.where(done, 0.0, step.reward),
                    carry,
                )
                return split(data_parallel, runner), split(data_parallel, transition)

            runner = (state.env_state, state.observation, state.episode_start,
                      state.previous_action, state.previous_reward, state.carry)  # fmt: skip
            runner, rollout = jax.lax.scan(
                # Both keys of every step from one split: each split is a loop of
                # small kernels on CPUs, a visible share of a cheap step.
                env_step,
                runner,
                jax.random.split(rollout_key, (num_steps, 2)),
            )

            # 2. Bootstrap max_a Q(final_observation_t, a), each from the carry
            # right after step t, in one batched call; then Q(lambda).
            flat = num_steps * num_envs
            _, next_q = _apply(
                network,
                state.params,
                _merge_time(rollout.final_observation)[:, None],
                jnp.zeros((flat, 1), bool),
                jax.tree.map(_merge_time, rollout.carry),
                _merge_time(rollout.action)[:, None],
                _merge_time(rollout.reward)[:, None],
            )
            bootstrap = jnp.max(next_q[:, 0], axis=-1).reshape(num_steps, num_envs)
            targets = q_lambda_returns(
                rollout.reward, bootstrap, rollout.terminated, rollout.done,
                config.gamma, config.q_lambda,
            )  # fmt: skip
            batch = jax.tree.map(
                lambda x: split(data_parallel, jnp.swapaxes(x, 0, 1)),
                _Batch(
                    observation=rollout.observation,
                    episode_start=rollout.episode_start,
                    previous_action=rollout.previous_action,
                    previous_reward=rollout.previous_reward,
                    action=rollout.action,
                    target=targets,
                ),
            )

            # 3. Update epochs over minibatches.
            def epoch(carry: tuple, epoch_key: jax.Array):
                minibatches = self._minibatches(epoch_key, batch, initial_carry)
                # Each minibatch [M, size, ...] is itself split over the devices.
                minibatches = split(data_parallel, minibatches, axis=1)
                carry, losses = jax.lax.scan(minibatch_step, carry, minibatches)
                return carry, jnp.mean(losses)

            (params, opt_state), losses = jax.lax.scan(
                epoch,
                (state.params, state.optimizer_state),
                jax.random.split(epochs_key, config.update_epochs),
            )

            # 4. Metrics of this update.
            episode = rollout.episode
            episode_count = jnp.sum(episode["done"], dtype=jnp.int32)
            per_episode = jnp.where(episode_count > 0, 1.0 / episode_count, jnp.nan)
            env_steps = state.env_steps + num_envs * num_steps
            update_count = state.update_count + 1
            metrics = {
                "loss": jnp.mean(losses),
                "q_value": jnp.mean(rollout.q_value),
                "epsilon": epsilon,
                "episode_return": jnp.sum(episode["return"]) * per_episode,
                "episode_length": jnp.sum(episode["length"], dtype=jnp.float32) * per_episode,
                "episode_count": episode_count,
                "env_steps": env_steps,
                "update": update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)

            env_state, observation, start, prev_action, prev_reward, carry = runner
            state = state.replace(
                params=params,
                optimizer_state=opt_state,
                env_state=env_state,
                observation=observation,
                episode_start=start,
                previous_action=prev_action,
                previous_reward=prev_reward,
                carry=carry,
                env_steps=env_steps,
                update_count=update_count,
            )
            return state, metrics

        def minibatch_step(carry: tuple, minibatch: tuple):
            params, opt_state = carry
            data, initial_carry = minibatch
            loss, grads = jax.value_and_grad(self._loss)(params, data, initial_carry)
            if config.max_grad_norm is not None:
                norm = optax.tree.norm(grads)
                scale = jnp.minimum(1.0, config.max_grad_norm / (norm + 1e-6))
                grads = jax.tree.map(lambda g: g * scale, grads)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        state, metrics = jax.lax.scan(update_step, state, jax.random.split(key, num_updates))
        return place(data_parallel, state.replace(metrics=metrics), _ENV_AXIS_FIELDS)

    def _minibatches(self, key: jax.Array, batch: _Batch, carry: Any) -> tuple[_Batch, Any]:
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

            return jax.tree.map(split, (batch, carry))
        order = jax.random.permutation(key, config.steps_per_update)

        def shuffle(x: jax.Array) -> jax.Array:
            x = x.reshape(config.steps_per_update, 1, *x.shape[2:])
            x = jnp.take(x, order, axis=0)
            return x.reshape(groups, -1, *x.shape[1:])

        return jax.tree.map(shuffle, batch), None

    def _loss(self, params: Any, data: _Batch, carry: Any) -> jax.Array:
        """``0.5 * mean (Q(o_t, a_t) - G_t)^2`` over the non-burn-in steps."""
        burn_in = self.config.burn_in_length

        def apply(data: _Batch, carry: Any) -> tuple[Any, jax.Array]:
            return _apply(
                self.network, params, data.observation, data.episode_start, carry,
                data.previous_action, data.previous_reward,
            )  # fmt: skip

        if burn_in:
            prefix = jax.tree.map(lambda x: x[:, :burn_in], data)
            carry, _ = apply(prefix, carry)
            carry = jax.lax.stop_gradient(carry)
            data = jax.tree.map(lambda x: x[:, burn_in:], data)
        _, q = apply(data, carry)
        q_taken = jnp.take_along_axis(q, data.action[..., None], axis=-1)[..., 0]
        return 0.5 * jnp.mean(jnp.square(q_taken - data.target))

    # ------------------------------------------------------------------ evaluation

    def _evaluate(
        self, key: jax.Array, params: Any, env_params: Any, *,
        eval_env: Environment, num_episodes: int, max_steps: int,
    ) -> EvaluationResult:  # fmt: skip
        return evaluate_greedy(
            key, self.network, params, eval_env, env_params, self._env_action,
            num_episodes, max_steps,
        )  # fmt: skip

    def _reset_training_env(self, key: jax.Array, state: PQNState) -> PQNState:
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
            raise TypeError(f"PQN: unsupported action space {space}.")
        return action.astype(space.dtype) + space.start


_ENV_AXIS_FIELDS = ("env_state", "observation", "episode_start", "previous_action",
                    "previous_reward", "carry")  # fmt: skip
"""``PQNState`` fields with a leading env axis, split over devices when data-parallel."""


def _empty_metrics() -> dict[str, jax.Array]:
    integer = {"episode_count", "env_steps", "update"}
    return {
        name: jnp.zeros((0,), jnp.int32 if name in integer else jnp.float32)
        for name in PQN_METRIC_NAMES
    }


def _apply(network: nn.Module, params: Any, *args: Any) -> tuple[Any, Any]:
    """``network.apply`` typed as what a Network returns: ``(carry, output)``."""
    return network.apply(params, *args)


def _merge_time(x: jax.Array) -> jax.Array:
    """``[T, B, ...] -> [T * B, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
