"""R2D2: recurrent replay DQN (Kapturowski et al., 2019), on one learner.

What R2D2 adds to :mod:`memorax.algorithms.dqn`'s sequence replay:

- **Stored state.** Every stored step keeps the carry the acting network fed
  in when it acted on that step. A sampled sequence is unrolled from the
  carry stored at its first step, so memory from before the sequence reaches
  it (DQN starts from the initial carry).
- **Burn-in.** The first ``burn_in_length`` steps of a sequence only run the
  network (online and target, each with its own parameters) to refresh the
  stored carry, which the acting network computed with older parameters; no
  gradient flows through them.
- **Value rescaling** (:mod:`memorax.algorithms.value_rescaling`). The network
  outputs ``h(Q)``; the n-step double-Q target is
  ``h(sum_k gamma^k r_{t+k} + gamma^m h^-1(Q_target(o', argmax_a Q_online(o', a))))``,
  bootstrapping truncated episodes from ``final_observation`` and never
  past a termination (:func:`~memorax.algorithms.n_step_targets`).
- **Prioritised replay** (:class:`~memorax.buffers.PrioritisedSequenceBuffer`).
  A sequence's priority is ``eta * max_t |td_t| + (1 - eta) * mean_t |td_t|``
  over its learned steps (:func:`sequence_priorities`), written back at the
  sampled starts after every gradient step; the squared TD errors are
  weighted by the buffer's importance weights.

Sequences are ``burn_in_length + sequence_length + n_step - 1`` stored steps:
burn-in, the learned steps, and the steps that only supply the learned
steps' rewards and bootstraps. Training is one jitted function: every
iteration acts epsilon-greedily for ``num_steps`` steps per env copy
(scanned), stores them, then takes ``gradient_steps`` prioritised gradient
steps (scanned); the target network is copied from the online one every
``target_update_interval`` gradient steps. Distributed actors are not part of
this agent: many env copies in one process act with the current parameters.

Data-parallel (``R2D2Config.num_devices``): each device steps its share of the
env copies and keeps their replay and its priorities (split along the env
axis); the sum tree over every copy's priorities is replicated, so every
device draws the same global batch as one device would, which is then split
over the devices (:mod:`memorax.algorithms.data_parallel`).
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
from memorax.algorithms.argument_checks import (
    check_bools,
    check_optional_positive,
    check_ranges,
    is_int,
    is_number,
)
from memorax.algorithms.argument_checks import num_iterations as iterations_in
from memorax.algorithms.data_parallel import (
    check_batch_size_field,
    check_num_devices_field,
    data_parallel_for,
    place,
    put_replicated,
    split,
)
from memorax.algorithms.dqn import n_step_targets
from memorax.algorithms.episode_starts import start_episodes
from memorax.algorithms.epsilon_greedy import epsilon_greedy, linear_epsilon
from memorax.algorithms.evaluate_call import evaluate_agent
from memorax.algorithms.evaluation import EvaluationResult
from memorax.algorithms.greedy_evaluation import evaluate_greedy
from memorax.algorithms.metrics_stream import MetricsCallback, emit
from memorax.algorithms.q_network_checks import check_discrete_q_network
from memorax.algorithms.sequence_q_values import apply_network, unroll_q_values
from memorax.algorithms.target_updates import periodic_target_update
from memorax.algorithms.value_rescaling import inverse_value_rescaling, value_rescaling
from memorax.buffers import PrioritisedBufferState, PrioritisedSequenceBuffer, Sample, SequenceIndex
from memorax.envs import Discrete, Environment, EpisodeStatistics
from memorax.networks import is_sequence_model

__all__ = ["R2D2", "R2D2_METRIC_NAMES", "R2D2Config", "R2D2State", "sequence_priorities"]

R2D2_METRIC_NAMES = (
    "loss",
    "q_value",
    "priority",
    "epsilon",
    "episode_return",
    "episode_length",
    "episode_count",
    "env_steps",
    "gradient_steps",
    "update",
)
"""Keys of ``R2D2State.metrics``, one value per iteration (``num_steps`` env steps per copy).

``loss`` (importance-weighted ``0.5 * (h(Q(o, a)) - target)^2``), ``q_value``
(mean ``Q(o, a)`` of the learned steps, unrescaled: in return units) and
``priority`` (mean new priority of the sampled sequences) are means over the
iteration's gradient steps, NaN while learning has not started; ``epsilon``
is the iteration's exploration rate; ``episode_return`` / ``episode_length``
are means over the episodes that ended in the iteration (NaN when none) and
``episode_count`` how many ended; ``env_steps``, ``gradient_steps`` and
``update`` (iterations) are the counters after the iteration.
"""

MIN_PRIORITY = 1e-6
"""Floor on written priorities, so a sequence with zero TD error can still be drawn."""

_OWNER = "R2D2Config"


@dataclasses.dataclass(frozen=True)
class R2D2Config:
    """R2D2 hyperparameters (paper values noted where the defaults differ).

    Attributes:
        num_envs: env copies stepped together; must equal the env's ``num_envs``.
        num_steps: steps per env copy in each iteration, before its gradient steps.
        gradient_steps: gradient steps per iteration (once learning has started).
        batch_size: sequences per gradient step (paper: 64).
        buffer_size: steps kept in replay, all env copies together; a multiple
            of ``num_envs`` (each copy keeps ``buffer_size / num_envs``).
        learning_starts: env steps (all copies) before the first gradient step.
        gamma: discount factor.
        n_step: rewards summed per target before bootstrapping.
        target_update_interval: copy the online parameters to the target
            network every this many gradient steps.
        epsilon_start, epsilon_end: exploration rate at env step 0 and after
            ``epsilon_decay_steps`` env steps (all copies counted); linear
            between. (The paper gives each distributed actor a fixed epsilon.)
        epsilon_decay_steps: env steps over which epsilon decays (0: ``epsilon_end``).
        max_grad_norm: clip the gradient to this global norm (``None``: no clipping).
        sequence_length: learned steps per sampled sequence (paper: 80).
        burn_in_length: steps before them that only refresh the carry (paper: 40).
        stored_state: start each sequence from the carry stored in replay;
            False starts from the initial carry (the paper's "zero state" ablation).
        value_rescaling: learn ``h(Q)`` (see the module docstring); False
            learns ``Q`` directly.
        value_rescaling_epsilon: the ``eps`` of ``h``.
        priority_exponent: ``alpha``: sequences are drawn with probability
            ``p ** alpha / sum p ** alpha``; 0 samples uniformly.
        importance_sampling_exponent: ``beta`` of the importance weights
            ``(N P(i)) ** -beta`` (normalised by the batch maximum).
        priority_eta: ``eta`` in ``eta * max |td| + (1 - eta) * mean |td|``.
        num_devices: ``None`` (default): train on one device. An int: train
            data-parallel over the first ``num_devices`` of ``jax.devices()``,
            as :attr:`memorax.algorithms.DQNConfig.num_devices`: each device
            steps ``num_envs / num_devices`` env copies and keeps their replay
            and priorities; the sum tree is replicated, so each gradient step
            draws the same ``batch_size`` sequences as on one device and splits
            them over the devices (``num_envs`` and ``batch_size`` must be
            multiples of it). Same key and config give the single-device result
            up to float rounding. JAX-native envs only.
    """

    num_envs: int
    num_steps: int = 1
    gradient_steps: int = 1
    batch_size: int = 32
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    gamma: float = 0.997
    n_step: int = 5
    target_update_interval: int = 2_500
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    epsilon_decay_steps: int = 50_000
    max_grad_norm: float | None = 40.0
    sequence_length: int = 40
    burn_in_length: int = 20
    stored_state: bool = True
    value_rescaling: bool = True
    value_rescaling_epsilon: float = 1e-3
    priority_exponent: float = 0.9
    importance_sampling_exponent: float = 0.6
    priority_eta: float = 0.9
    num_devices: int | None = None

    def __post_init__(self) -> None:
        positive = (is_int, 1, None, "a positive integer")
        non_negative = (is_int, 0, None, "a non-negative integer")
        fraction = (is_number, 0.0, 1.0, "in [0, 1]")
        rules = {
            **dict.fromkeys(("num_envs", "num_steps", "batch_size", "buffer_size", "n_step",
                             "target_update_interval", "sequence_length"), positive),
            **dict.fromkeys(("gradient_steps", "learning_starts", "epsilon_decay_steps",
                             "burn_in_length"), non_negative),
            "gamma": (is_number, 0.0, 1.0, "in (0, 1]"),
            **dict.fromkeys(("epsilon_start", "epsilon_end", "importance_sampling_exponent",
                             "priority_eta"), fraction),
            **dict.fromkeys(("priority_exponent", "value_rescaling_epsilon"),
                            (is_number, 0.0, None, "a non-negative number")),
        }  # fmt: skip
        check_ranges(_OWNER, self, rules, open_low=("gamma",))
        check_bools(_OWNER, self, ("stored_state", "value_rescaling"))
        check_optional_positive(_OWNER, self, ("max_grad_norm",))
        check_num_devices_field(_OWNER, self.num_envs, self.num_devices)
        check_batch_size_field(_OWNER, self.batch_size, self.num_devices)
        per_copy, remainder = divmod(self.buffer_size, self.num_envs)
        if remainder:
            raise ValueError(
                f"{_OWNER}: buffer_size={self.buffer_size} must be a multiple of num_envs="
                f"{self.num_envs}, so every env copy keeps the same number of steps."
            )
        if per_copy < self.stored_sequence_length:
            raise ValueError(
                f"{_OWNER}: each env copy keeps buffer_size / num_envs = {per_copy} steps, "
                f"fewer than one sampled sequence (burn_in_length + sequence_length + "
                f"n_step - 1 = {self.stored_sequence_length} steps); raise buffer_size or "
                "shorten the sequences."
            )

    @property
    def steps_per_iteration(self) -> int:
        """Env steps (all copies) per iteration: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def stored_sequence_length(self) -> int:
        """Steps per sampled sequence: ``burn_in_length + sequence_length + n_step - 1``."""
        return self.burn_in_length + self.sequence_length + self.n_step - 1


class R2D2State(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds).

    Attributes:
        params, target_params: Flax variables of the online and target networks.
        optimizer_state: optax state of the online network's update.
        buffer_state: the :class:`~memorax.buffers.PrioritisedBufferState`;
            its ``experience["carry"]`` holds the stored carries.
        env_state: the (episode-statistics wrapped) env state.
        observation: ``[num_envs, *obs_shape]`` the next observation to act on.
        episode_start: ``[num_envs]`` bool, ``observation`` starts an episode.
        previous_action: ``[num_envs]`` int32, zero at an episode start.
        previous_reward: ``[num_envs]`` float32, zero at an episode start.
        carry: the acting network's torso carry (leaves ``[num_envs, ...]``).
        env_steps: int32, env steps taken in training, all copies counted.
        gradient_steps: int32, gradient steps taken.
        update_count: int32, iterations done.
        metrics: dict of ``[num_iterations]`` arrays from the last ``train``
            call (keys: :data:`R2D2_METRIC_NAMES`); ``[0]`` arrays before any.
        evaluation: the :class:`~memorax.algorithms.EvaluationResult` of the
            last ``evaluate`` call (empty before any).
    """

    params: Any
    target_params: Any
    optimizer_state: Any
    buffer_state: PrioritisedBufferState
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


def sequence_priorities(abs_td: jax.Array, eta: float) -> jax.Array:
    """R2D2's sequence priority ``eta * max_t |td_t| + (1 - eta) * mean_t |td_t|``.

    Args:
        abs_td: ``[B, T]`` absolute TD errors of each sequence's learned steps.
        eta: weight of the maximum, in ``[0, 1]``.

    Returns:
        ``[B]`` float32 priorities.
    """
    abs_td = jnp.asarray(abs_td, jnp.float32)
    return eta * jnp.max(abs_td, axis=1) + (1.0 - eta) * jnp.mean(abs_td, axis=1)


class R2D2:
    """R2D2 for discrete-action envs, JAX-native or callback, with a recurrent Q-network.

    Args:
        config: :class:`R2D2Config`.
        env: a batched env from ``make(...)`` with ``num_envs == config.num_envs``
            and a ``Discrete`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        network: a :class:`~memorax.networks.Network` with a sequence-model
            torso (e.g. :class:`~memorax.networks.GRU`) and a
            :class:`~memorax.networks.DiscreteQNetwork` head.
        optimizer: an optax transformation (the paper: ``optax.adam(1e-4, eps=1e-3)``);
            gradients are clipped to ``config.max_grad_norm`` before it.
        metrics_callback: optional host function called after every iteration
            with a dict of its metrics (:data:`R2D2_METRIC_NAMES` plus ``"seed"``).

    Example::

        env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=16, memory_length=10)
        agent = R2D2(R2D2Config(num_envs=16), env, env_params, network, optax.adam(1e-3))
        state = agent.init(jax.random.key(0))
        state = agent.train(jax.random.key(1), state, num_steps=100_000)
        state = agent.evaluate(jax.random.key(2), state)
    """

    def __init__(
        self,
        config: R2D2Config,
        env: Environment,
        env_params: Any,
        network: nn.Module,
        optimizer: optax.GradientTransformation,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        check_agent_arguments(
            "R2D2", config, R2D2Config, env, networks={}, optimizers={"optimizer": optimizer}
        )
        check_discrete_q_network(env, network, "R2D2")
        if not is_sequence_model(getattr(network, "torso", None)):
            raise ValueError(
                "R2D2 replays sequences from stored recurrent carries, so the network's torso "
                f"must be a SequenceModel (e.g. memorax.networks.GRU); got "
                f"{type(getattr(network, 'torso', None)).__name__}. For a feed-forward "
                "Q-network use DQN."
            )
        self.config = config
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        self.network = network
        self.optimizer = optimizer
        self.metrics_callback = metrics_callback
        self.buffer = PrioritisedSequenceBuffer(
            num_envs=config.num_envs,
            capacity=config.buffer_size // config.num_envs,
            sequence_length=config.stored_sequence_length,
            priority_exponent=config.priority_exponent,
            importance_sampling_exponent=config.importance_sampling_exponent,
        )
        self._update = (
            optimizer
            if config.max_grad_norm is None
            else optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)
        )
        self.data_parallel = data_parallel_for("R2D2", env, config.num_envs, config.num_devices)
        self._train_jit = jax.jit(self._train, static_argnames="num_iterations")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> R2D2State:
        """Initial parameters (target = online), optimizer state, an empty buffer, a reset env.

        Args:
            key: a PRNG key (vmap over keys to initialise several seeds).
        """
        network_key, env_key = jax.random.split(key)
        fresh = start_episodes(env_key, self.env, self.env_params, self.network)
        acting_inputs = (fresh["observation"], fresh["episode_start"], fresh["carry"],
                         fresh["previous_action"], fresh["previous_reward"])  # fmt: skip
        params = self.network.init(network_key, *_with_time_axis(*acting_inputs))
        # One step of one env copy, laid out as the acting loop stores it.
        observation, start, carry, action, reward = acting_inputs
        example = _stored_step(observation, start, action, reward, carry, action, reward,
                               start, start, observation)  # fmt: skip
        state = R2D2State(
            params=params,
            target_params=params,
            optimizer_state=self._update.init(params),
            buffer_state=self.buffer.init(jax.tree.map(lambda x: x[0], example)),
            **fresh,
            env_steps=jnp.zeros((), jnp.int32),
            gradient_steps=jnp.zeros((), jnp.int32),
            update_count=jnp.zeros((), jnp.int32),
            metrics=_no_metrics(),
            evaluation=EvaluationResult.empty(self.config.num_envs, 1),
        )
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def train(self, key: jax.Array, state: R2D2State, num_steps: int) -> R2D2State:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` iterations (a
        warning says when ``num_steps`` is not a multiple); ``num_steps`` is
        static. ``jax.vmap(agent.train, in_axes=(0, 0, None))`` trains several
        seeds of a JAX-native env at once.

        Returns:
            The new state; ``state.metrics`` holds ``[num_iterations]`` arrays
            (:data:`R2D2_METRIC_NAMES`).
        """
        num_iterations = iterations_in("R2D2.train", num_steps, self.config.steps_per_iteration)
        state = state.replace(metrics=put_replicated(self.data_parallel, _no_metrics()))
        return self._train_jit(key, state, num_iterations=num_iterations)

    def evaluate(
        self,
        key: jax.Array,
        state: R2D2State,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> R2D2State:
        """Run complete episodes with the greedy policy ``argmax_a Q(o, a)``.

        Results go to ``state.evaluation``; parameters, the buffer, optimizer
        state, counters and training metrics are never changed. The training
        env is handled as in :meth:`memorax.algorithms.PPO.evaluate` (pass
        ``env=`` to evaluate on a separate env with the same spaces).
        """
        return evaluate_agent(
            "R2D2", key, state, state.params,
            num_episodes=num_episodes, max_steps=max_steps, env=env, env_params=env_params,
            training_env=self.env.env, training_env_params=self.env_params,
            evaluate_jit=self._evaluate_jit, reset_jit=self._reset_jit,
        )  # fmt: skip

    def reset_env(self, key: jax.Array, state: R2D2State) -> R2D2State:
        """Start fresh episodes in the training env, keeping parameters, buffer and counters."""
        return self._reset_jit(key, state)

    def td_errors(self, params: Any, target_params: Any, experience: Any) -> jax.Array:
        """``h(Q(o_t, a_t)) - target_t`` over the learned steps of sampled sequences.

        Args:
            params, target_params: online and target network variables.
            experience: a sampled sequence batch, ``Sample.experience`` of
                ``self.buffer`` (leaves ``[B, config.stored_sequence_length, ...]``).

        Returns:
            ``[B, config.sequence_length]`` float32 (in the rescaled space when
            ``config.value_rescaling``).
        """
        q_taken, targets = self._q_and_targets(params, target_params, experience)
        return q_taken - targets

    # ------------------------------------------------------------------ training

    def _train(self, key: jax.Array, state: R2D2State, num_iterations: int) -> R2D2State:
        config, data_parallel = self.config, self.data_parallel

        def iteration(state: R2D2State, iteration_key: jax.Array):
            state = place(data_parallel, state, _ENV_AXIS_FIELDS)
            act_key, learn_key = jax.random.split(iteration_key)
            epsilon = linear_epsilon(state.env_steps, config.epsilon_start, config.epsilon_end,
                                     config.epsilon_decay_steps)  # fmt: skip
            # 1. Act, 2. store (batch-major [num_envs, num_steps, ...]; each device writes
            # its own env copies' steps and priorities), 3. learn.
            state, steps, episodes = self._act(act_key, state, epsilon)
            steps = split(data_parallel, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps))
            buffer_state = self._place_buffer(self.buffer.add(state.buffer_state, steps))
            env_steps = state.env_steps + config.steps_per_iteration
            state = state.replace(buffer_state=buffer_state, env_steps=env_steps)
            learning = self.buffer.can_sample(buffer_state) & (env_steps >= config.learning_starts)
            state, learned = self._learn(learn_key, state, learning)

            # 4. This iteration's metrics.
            ended = jnp.sum(episodes["done"], dtype=jnp.int32)
            per_episode = jnp.where(ended > 0, 1.0 / jnp.maximum(ended, 1), jnp.nan)
            state = state.replace(update_count=state.update_count + 1)
            metrics = {
                **{name: jnp.where(learning, value, jnp.nan) for name, value in learned.items()},
                "epsilon": epsilon,
                "episode_return": jnp.sum(episodes["return"]) * per_episode,
                "episode_length": jnp.sum(episodes["length"], dtype=jnp.float32) * per_episode,
                "episode_count": ended,
                "env_steps": env_steps,
                "gradient_steps": state.gradient_steps,
                "update": state.update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)
            return state, metrics

        state, metrics = jax.lax.scan(iteration, state, jax.random.split(key, num_iterations))
        return place(data_parallel, state.replace(metrics=metrics), _ENV_AXIS_FIELDS)

    def _place_buffer(self, buffer_state: PrioritisedBufferState) -> PrioritisedBufferState:
        """Data-parallel: experience and priorities split along the env axis, the sum tree
        and counters replicated."""
        return place(self.data_parallel, buffer_state, _BUFFER_ENV_AXIS_FIELDS)

    def _act(
        self, key: jax.Array, state: R2D2State, epsilon: jax.Array
    ) -> tuple[R2D2State, dict[str, Any], dict[str, jax.Array]]:
        """``num_steps`` epsilon-greedy steps of every env copy.

        Returns the state moved on, the stored steps (time-major
        ``[num_steps, num_envs, ...]``, carry included) and the episode statistics.
        """
        network, env, env_params, params = self.network, self.env, self.env_params, state.params

        def env_step(runner: tuple, step_key: jax.Array):
            env_state, observation, start, last_action, last_reward, carry = runner
            action_key, env_key = jax.random.split(step_key)
            next_carry, q = apply_network(
                network, params,
                *_with_time_axis(observation, start, carry, last_action, last_reward),
            )  # fmt: skip
            action = epsilon_greedy(action_key, q[:, 0], epsilon)
            out = env.step(env_key, env_state, self._env_action(action), env_params)
            done = out.terminated | out.truncated
            reward = out.reward.astype(jnp.float32)
            final_observation = out.info["final_observation"]
            stored = _stored_step(observation, start, last_action, last_reward, carry, action,
                                  reward, out.terminated, done, final_observation)  # fmt: skip
            runner = (out.state, out.observation, done, jnp.where(done, 0, action),
                      jnp.where(done, 0.0, reward), next_carry)  # fmt: skip
            outputs = (stored, out.info["episode"])
            return split(self.data_parallel, runner), split(self.data_parallel, outputs)

        runner = (state.env_state, state.observation, state.episode_start,
                  state.previous_action, state.previous_reward, state.carry)  # fmt: skip
        runner, (steps, episodes) = jax.lax.scan(
            env_step, runner, jax.random.split(key, self.config.num_steps)
        )
        env_state, observation, start, last_action, last_reward, carry = runner
        state = state.replace(env_state=env_state, observation=observation, episode_start=start,
                              previous_action=last_action, previous_reward=last_reward,
                              carry=carry)  # fmt: skip
        return state, steps, episodes

    def _learn(
        self, key: jax.Array, state: R2D2State, learning: jax.Array
    ) -> tuple[R2D2State, dict[str, jax.Array]]:
        """``config.gradient_steps`` prioritised updates, applied only where ``learning``.

        Returns the state and the means of ``loss``, ``q_value`` and ``priority``.
        """
        config = self.config
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)

        def gradient_step(learner: tuple, step_key: jax.Array):
            params, target_params, opt_state, buffer_state, count = learner
            # The same global draw as on one device (the sum tree is replicated); each
            # device gathers the sequences of its env copies, then the batch is split.
            sample = self.buffer.sample(buffer_state, step_key, config.batch_size)
            sample = split(self.data_parallel, sample)
            (loss, (q_value, priorities)), grads = grad_fn(params, target_params, sample)
            updates, new_opt_state = self._update.update(grads, opt_state, params)
            params, opt_state = jax.tree.map(
                lambda new, old: jnp.where(learning, new, old),
                (optax.apply_updates(params, updates), new_opt_state), (params, opt_state),
            )  # fmt: skip
            # The buffer ignores indices that name no start (env -1): no writes before learning.
            indices = SequenceIndex(jnp.where(learning, sample.indices.env, -1),
                                    sample.indices.step)  # fmt: skip
            buffer_state = self._place_buffer(
                self.buffer.update_priorities(buffer_state, indices, priorities)
            )
            count = count + learning.astype(jnp.int32)
            target_params = periodic_target_update(
                params, target_params, count, config.target_update_interval, 1.0, learning
            )
            learner = (params, target_params, opt_state, buffer_state, count)
            return learner, {"loss": loss, "q_value": q_value, "priority": jnp.mean(priorities)}

        learner = (state.params, state.target_params, state.optimizer_state, state.buffer_state,
                   state.gradient_steps)  # fmt: skip
        if not config.gradient_steps:
            nan = jnp.full((), jnp.nan, jnp.float32)
            return state, {"loss": nan, "q_value": nan, "priority": nan}
        learner, stats = jax.lax.scan(
            gradient_step, learner, jax.random.split(key, config.gradient_steps)
        )
        params, target_params, opt_state, buffer_state, count = learner
        state = state.replace(params=params, target_params=target_params,
                              optimizer_state=opt_state, buffer_state=buffer_state,
                              gradient_steps=count)  # fmt: skip
        return state, jax.tree.map(jnp.mean, stats)

    def _loss(
        self, params: Any, target_params: Any, sample: Sample
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Importance-weighted ``0.5 * mean (h(Q(o, a)) - target)^2``; aux: mean Q
        (unrescaled) and the sequences' new priorities ``[B]``."""
        config = self.config
        q_taken, targets = self._q_and_targets(params, target_params, sample.experience)
        td = q_taken - targets
        loss = 0.5 * jnp.mean(sample.weights[:, None] * jnp.square(td))
        priorities = sequence_priorities(jax.lax.stop_gradient(jnp.abs(td)), config.priority_eta)
        return loss, (jnp.mean(self._unrescaled(q_taken)), jnp.maximum(priorities, MIN_PRIORITY))

    def _q_and_targets(
        self, params: Any, target_params: Any, experience: dict[str, Any]
    ) -> tuple[jax.Array, jax.Array]:
        """``h(Q(o_t, a_t))`` and its n-step double-Q target, both ``[B, sequence_length]``."""
        config = self.config
        burn_in, length = config.burn_in_length, config.sequence_length
        batch = experience["observation"].shape[0]
        if config.stored_state:
            start_carry = jax.tree.map(lambda c: c[:, 0], experience["carry"])
        else:
            start_carry = self.network.initialize_carry(batch)
        steps = {name: value for name, value in experience.items() if name != "carry"}

        def unroll(variables: Any) -> tuple[jax.Array, jax.Array]:
            _, q, bootstrap_q = unroll_q_values(self.network, variables, start_carry, steps,
                                                burn_in)  # fmt: skip
            return q[:, burn_in:], bootstrap_q[:, burn_in:]

        q, online_bootstrap = unroll(params)
        _, target_bootstrap = unroll(target_params)
        learned = jax.tree.map(lambda x: x[:, burn_in:], steps)
        best = jnp.argmax(online_bootstrap, axis=-1)[..., None]
        bootstrap = jnp.take_along_axis(target_bootstrap, best, axis=-1)[..., 0]
        returns = n_step_targets(
            learned["reward"], self._unrescaled(bootstrap), learned["terminated"],
            learned["done"], config.gamma, config.n_step,
        )[:, :length]  # fmt: skip
        if config.value_rescaling:
            returns = value_rescaling(returns, config.value_rescaling_epsilon)
        actions = learned["action"][:, :length, None]
        q_taken = jnp.take_along_axis(q[:, :length], actions, axis=-1)[..., 0]
        return q_taken, jax.lax.stop_gradient(returns)

    def _unrescaled(self, values: jax.Array) -> jax.Array:
        """Network outputs in return units (``h^-1`` when value rescaling is on)."""
        if not self.config.value_rescaling:
            return values
        return inverse_value_rescaling(values, self.config.value_rescaling_epsilon)

    # ------------------------------------------------------------------ evaluation

    def _evaluate(
        self, key: jax.Array, params: Any, env_params: Any, *,
        eval_env: Environment, num_episodes: int, max_steps: int,
    ) -> EvaluationResult:  # fmt: skip
        # h is increasing, so argmax over h(Q) is the greedy action.
        return evaluate_greedy(key, self.network, params, eval_env, env_params,
                               self._env_action, num_episodes, max_steps)  # fmt: skip

    def _reset_training_env(self, key: jax.Array, state: R2D2State) -> R2D2State:
        state = state.replace(**start_episodes(key, self.env, self.env_params, self.network))
        return place(self.data_parallel, state, _ENV_AXIS_FIELDS)

    def _env_action(self, action: jax.Array) -> jax.Array:
        space = self.env.action_space
        if not isinstance(space, Discrete):  # checked at construction; narrows the type
            raise TypeError(f"R2D2: unsupported action space {space}.")
        return (action + space.start).astype(space.dtype)


_BUFFER_ENV_AXIS_FIELDS = ("experience", "priorities")
"""``PrioritisedBufferState`` fields with a leading env axis; the sum tree (one heap over
every env copy's starts), the step counter and the running maximum are replicated."""

_ENV_AXIS_FIELDS = ("env_state", "observation", "episode_start", "previous_action",
                    "previous_reward", "carry",
                    *(f"buffer_state.{name}" for name in _BUFFER_ENV_AXIS_FIELDS))  # fmt: skip
"""``R2D2State`` fields (and buffer fields) with a leading env axis, split over devices
when data-parallel."""


def _stored_step(
    observation: jax.Array,
    episode_start: jax.Array,
    previous_action: jax.Array,
    previous_reward: jax.Array,
    carry: Any,
    action: jax.Array,
    reward: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    final_observation: jax.Array,
) -> dict[str, Any]:
    """What replay keeps of one step (leaves ``[num_envs, ...]``); ``carry`` is the carry the
    acting network was fed with ``observation``, before it was updated by it."""
    return {
        "observation": observation,
        "episode_start": episode_start,
        "previous_action": previous_action,
        "previous_reward": previous_reward,
        "carry": carry,
        "action": action,
        "reward": reward,
        "terminated": terminated,
        "done": done,
        "final_observation": final_observation,
    }


def _with_time_axis(
    observation: jax.Array, start: jax.Array, carry: Any, action: jax.Array, reward: jax.Array
) -> tuple[Any, ...]:
    """One acting step's network inputs, ``[num_envs, ...] -> [num_envs, 1, ...]`` (not the
    carry)."""
    return observation[:, None], start[:, None], carry, action[:, None], reward[:, None]


def _no_metrics() -> dict[str, jax.Array]:
    counts = ("episode_count", "env_steps", "gradient_steps", "update")
    return {
        name: jnp.zeros((0,), jnp.int32 if name in counts else jnp.float32)
        for name in R2D2_METRIC_NAMES
    }
