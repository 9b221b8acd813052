"""Soft actor-critic (Haarnoja et al., 2018), continuous and discrete, with or without memory.

One jitted function does a whole training call. Each iteration, read top to
bottom: every env copy acts for ``num_steps`` steps with a sample of the
actor's policy (uniformly random actions before ``learning_starts``), the
steps go to a :class:`~memorax.buffers.SequenceBuffer`, then
``gradient_steps`` updates each, on one sampled batch:

1. the critic regresses both of its twin estimates ``Q_i(o_t, a_t)`` onto the
   soft target ``r_t + gamma * (1 - terminated_t) * V'(o'_t)`` with
   ``V'(o') = E_{a' ~ pi}[min_i Q'_i(o', a') - alpha log pi(a' | o')]`` from a
   target critic, where ``o'_t`` is the ``final_observation`` of step ``t``
   (before any auto-reset), so truncated episodes bootstrap and terminated
   ones do not;
2. the actor (with the updated critic) minimises
   ``E[alpha log pi(a | o) - min_i Q_i(o, a)]``;
3. the temperature ``alpha = exp(log_alpha)`` moves the policy's entropy
   towards ``target_entropy``: ``loss = log_alpha * (entropy - target_entropy)``;
4. the target critic is Polyak-averaged, ``target <- tau * critic + (1 - tau)
   * target``, every ``target_update_interval`` gradient steps (``tau = 1``
   makes it a hard copy).

Continuous actions (a ``Box``): a :class:`~memorax.networks.SquashedGaussian`
actor acts in ``(-1, 1)^A``, rescaled to the Box bounds only for the env
(:mod:`memorax.algorithms.box_actions`); expectations over ``a`` are
single reparametrised samples. Discrete actions (Christodoulou, 2019): a
:class:`~memorax.networks.Categorical` actor and a critic that outputs
``Q`` for every action, so every expectation over actions is an exact sum.

Memory: actor and critic are separate networks, each with its own carry.
Acting runs the actor for the actions and the critic for the value of the
action taken (the ``q_value`` metric), each on its own carry kept in the
state. Training runs both over sampled sequences of ``burn_in_length +
sequence_length`` steps from their initial carries (reset wherever an
episode starts); the burn-in prefix only warms up the carries, as in
:mod:`memorax.algorithms.dqn`. With a memory torso the defaults are 20
learned steps after 10 of burn-in; ``sequence_length=1`` is refused.

Data-parallel (``SACConfig.num_devices``): each device steps its share of the
env copies (carries included) and keeps their replay; every gradient step
samples the global batch as on one device and splits it over the devices
(:mod:`memorax.algorithms.data_parallel`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from memorax.algorithms.agent_checks import check_agent_arguments, resolve_replay_sequences
from memorax.algorithms.argument_checks import (
    check_bools,
    check_optional_positive,
    check_ranges,
    check_sequence_fields,
    is_int,
    is_number,
    num_iterations,
)
from memorax.algorithms.box_actions import box_action_dim, scale_to_box
from memorax.algorithms.data_parallel import (
    check_batch_size_field,
    check_num_devices_field,
    data_parallel_for,
    place,
    put_replicated,
    split,
)
from memorax.algorithms.dqn import n_step_targets
from memorax.algorithms.evaluate_call import evaluate_agent
from memorax.algorithms.evaluation import EvaluationResult, run_episodes
from memorax.algorithms.metrics_stream import MetricsCallback, emit
from memorax.algorithms.target_updates import periodic_target_update
from memorax.buffers import BufferState, SequenceBuffer
from memorax.envs import Box, Discrete, Environment, EpisodeStatistics
from memorax.networks import (
    Alpha,
    Categorical,
    ContinuousQNetwork,
    DiscreteQNetwork,
    SquashedGaussian,
    TwinContinuousQNetwork,
    is_sequence_model,
)

__all__ = ["SAC", "SAC_METRIC_NAMES", "SACConfig", "SACState"]

SAC_METRIC_NAMES = (
    "critic_loss",
    "actor_loss",
    "alpha_loss",
    "alpha",
    "entropy",
    "q_value",
    "episode_return",
    "episode_length",
    "episode_count",
    "env_steps",
    "gradient_steps",
    "update",
)
"""Keys of ``SACState.metrics``, one value per iteration (``num_steps`` env steps per copy).

``critic_loss`` (``0.5 * sum_i (Q_i(o, a) - target)^2``), ``actor_loss``,
``alpha_loss`` and ``entropy`` (the policy's entropy on the sampled steps,
estimated by ``-log pi(a | o)`` for continuous actions, exact for discrete)
are means over the iteration's gradient steps, NaN while learning has not
started; ``alpha`` is the temperature after the iteration; ``q_value`` is the
mean ``min_i Q_i(o_t, a_t)`` of the actions taken in the iteration, by the
critic run along the env stream on its own carry; ``episode_return`` /
``episode_length`` are means over the episodes that ended in the iteration
(NaN when none) and ``episode_count`` how many ended; ``env_steps``,
``gradient_steps`` and ``update`` (iterations) are the counters after it.
"""

_LOSS_NAMES = ("critic_loss", "actor_loss", "alpha_loss", "entropy")
_DISCRETE_ENTROPY_FRACTION = 0.89


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters.

    Attributes:
        num_envs: env copies stepped together; must equal the env's ``num_envs``.
        num_steps: steps per env copy in each iteration, before its gradient steps.
        gradient_steps: gradient steps per iteration (once learning has started).
        batch_size: sequences per gradient step.
        buffer_size: steps kept in replay, all env copies together; must be a
            multiple of ``num_envs`` (each copy keeps ``buffer_size / num_envs``).
        learning_starts: env steps (all copies) before the first gradient step;
            iterations that start before it act uniformly at random.
        gamma: discount factor.
        tau: Polyak coefficient of the target critic update, in ``(0, 1]``
            (``1``: hard copy).
        target_update_interval: update the target critic every this many
            gradient steps (``1`` with a small ``tau`` is SAC's default; a hard
            copy every ``N`` steps is ``tau=1.0, target_update_interval=N``).
        initial_alpha: the entropy temperature at the start, ``> 0``.
        learn_alpha: tune ``alpha`` towards ``target_entropy``; False keeps
            ``initial_alpha``.
        target_entropy: the policy entropy ``alpha`` is tuned to reach. ``None``:
            ``-action_dim`` for continuous actions, ``0.89 * log(n)`` for ``n``
            discrete ones (a fraction of the maximum entropy; Christodoulou's
            0.98 leaves a near-uniform policy on small action sets).
        max_grad_norm: clip each gradient (actor, critic, alpha) to this
            global norm (``None``: no clipping).
        sequence_length: steps per sampled sequence that are learned from.
            ``None`` (default): 1 for feed-forward networks, 20 when the actor
            or the critic has a memory torso
            (:data:`~memorax.algorithms.agent_checks.MEMORY_SEQUENCE_LENGTH`);
            a memory torso needs at least 2, or it learns nothing to remember.
        burn_in_length: recurrent agents only: steps before those that only
            warm up the carries. ``None`` (default): 0 for feed-forward
            networks, 10 with a memory torso. The agent's ``config`` holds the
            resolved values.
        num_devices: ``None`` (default): train on one device. An int: train
            data-parallel over the first ``num_devices`` of ``jax.devices()``,
            as :attr:`memorax.algorithms.DQNConfig.num_devices`: each device
            steps ``num_envs / num_devices`` env copies and keeps their replay;
            each gradient step samples ``batch_size`` sequences exactly as on
            one device and splits them over the devices (``num_envs`` and
            ``batch_size`` must be multiples of it); parameters, optimizer
            states and the temperature are replicated. Same key and config give
            the single-device result up to float rounding. JAX-native envs only.
    """

    num_envs: int
    num_steps: int = 1
    gradient_steps: int = 1
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 5_000
    gamma: float = 0.99
    tau: float = 0.005
    target_update_interval: int = 1
    initial_alpha: float = 1.0
    learn_alpha: bool = True
    target_entropy: float | None = None
    max_grad_norm: float | None = None
    sequence_length: int | None = None
    burn_in_length: int | None = None
    num_devices: int | None = None

    def __post_init__(self) -> None:
        rules = {
            "num_envs": (is_int, 1, None, "a positive integer"),
            "num_steps": (is_int, 1, None, "a positive integer"),
            "gradient_steps": (is_int, 0, None, "a non-negative integer"),
            "batch_size": (is_int, 1, None, "a positive integer"),
            "buffer_size": (is_int, 1, None, "a positive integer"),
            "learning_starts": (is_int, 0, None, "a non-negative integer"),
            "target_update_interval": (is_int, 1, None, "a positive integer"),
            "gamma": (is_number, 0.0, 1.0, "in (0, 1]"),
            "tau": (is_number, 0.0, 1.0, "in (0, 1]"),
            "initial_alpha": (is_number, 0.0, None, "a positive number"),
        }
        check_ranges("SACConfig", self, rules, open_low=("gamma", "tau", "initial_alpha"))
        check_bools("SACConfig", self, ("learn_alpha",))
        check_optional_positive("SACConfig", self, ("max_grad_norm",))
        check_sequence_fields("SACConfig", self)
        check_num_devices_field("SACConfig", self.num_envs, self.num_devices)
        check_batch_size_field("SACConfig", self.batch_size, self.num_devices)
        entropy = self.target_entropy
        if not (entropy is None or (is_number(entropy) and math.isfinite(entropy))):
            raise ValueError(
                f"SACConfig: target_entropy must be a finite number or None (the default for "
                f"the action space), got {entropy!r}."
            )
        if self.buffer_size % self.num_envs:
            raise ValueError(
                f"SACConfig: buffer_size={self.buffer_size} must be a multiple of num_envs="
                f"{self.num_envs} (every env copy keeps the same number of steps)."
            )
        if self.buffer_size // self.num_envs < self.stored_sequence_length:
            raise ValueError(
                f"SACConfig: buffer_size / num_envs = {self.buffer_size // self.num_envs} steps "
                f"per env copy cannot hold one sampled sequence of burn_in_length + "
                f"sequence_length = {self.stored_sequence_length} steps; raise buffer_size."
            )

    @property
    def steps_per_iteration(self) -> int:
        """Env steps (all copies) per iteration: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def stored_sequence_length(self) -> int:
        """Steps per sampled sequence: ``burn_in_length + sequence_length`` (unset lengths
        counted as 0 and 1 until the agent resolves them)."""
        return (self.burn_in_length or 0) + (self.sequence_length or 1)


class SACState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds).

    Attributes:
        actor_params, critic_params, target_critic_params: Flax variables. A
            critic whose head is not a twin (``ContinuousQNetwork``,
            ``DiscreteQNetwork``) is held twice, stacked on a leading axis of 2.
        alpha_params: the :class:`~memorax.networks.Alpha` variables (``log_alpha``).
        actor_optimizer_state, critic_optimizer_state, alpha_optimizer_state: optax states.
        buffer_state: the replay buffer's :class:`~memorax.buffers.BufferState`.
        env_state: the (episode-statistics wrapped) env state.
        observation: ``[num_envs, *obs_shape]`` the next observation to act on.
        episode_start: ``[num_envs]`` bool, ``observation`` starts an episode.
        previous_action: ``[num_envs]`` int32 (discrete) or ``[num_envs, A]``
            float32 in ``[-1, 1]`` (continuous, before rescaling), zero at an
            episode start.
        previous_reward: ``[num_envs]`` float32, zero at an episode start.
        actor_carry: the actor torso's carry (``None`` for feed-forward).
        critic_carry: the critic torso's carry (``None`` for feed-forward;
            stacked on a leading axis of 2 for a critic held twice).
        env_steps: int32, env steps taken in training, all copies counted.
        gradient_steps: int32, gradient steps taken.
        update_count: int32, iterations done.
        metrics: dict of ``[num_iterations]`` arrays from the last ``train`` call
            (keys: :data:`SAC_METRIC_NAMES`); ``[0]`` arrays before any training.
        evaluation: the :class:`~memorax.algorithms.EvaluationResult` of the
            last ``evaluate`` call (empty before any).
    """

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    alpha_params: Any
    actor_optimizer_state: Any
    critic_optimizer_state: Any
    alpha_optimizer_state: Any
    buffer_state: BufferState
    env_state: Any
    observation: jax.Array
    episode_start: jax.Array
    previous_action: jax.Array
    previous_reward: jax.Array
    actor_carry: Any
    critic_carry: Any
    env_steps: jax.Array
    gradient_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


class SAC:
    """SAC with separate actor and (twin) critic networks, for JAX-native and callback envs.

    Args:
        config: :class:`SACConfig`.
        env: a batched env from ``make(...)`` with ``num_envs == config.num_envs``
            and a ``Discrete`` or bounded ``Box`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        actor: a :class:`~memorax.networks.Network` with a
            ``SquashedGaussian(A)`` head (``Box`` with ``A`` entries) or a
            ``Categorical(n)`` head (``Discrete(n)``).
        critic: a :class:`~memorax.networks.Network` with a
            ``TwinContinuousQNetwork`` head (twin heads on one torso) or a
            ``ContinuousQNetwork`` head (two independent copies of the whole
            network) for a ``Box``; a ``DiscreteQNetwork(n)`` head (two
            independent copies) for ``Discrete(n)``.
        actor_optimizer, critic_optimizer: optax transformations.
        alpha_optimizer: optax transformation of ``log_alpha``; ``None`` uses
            ``critic_optimizer`` (with its own state).
        metrics_callback: optional host function called after every iteration
            with a dict of its metrics (:data:`SAC_METRIC_NAMES` plus ``"seed"``).

    Example::

        env, env_params = make("gymnax::Pendulum-v1", num_envs=4)
        agent = SAC(SACConfig(num_envs=4), env, env_params, actor, critic,
                    optax.adam(3e-4), optax.adam(1e-3))
        state = agent.init(jax.random.key(0))
        state = agent.train(jax.random.key(1), state, num_steps=50_000)
        state = agent.evaluate(jax.random.key(2), state)
    """

    def __init__(
        self,
        config: SACConfig,
        env: Environment,
        env_params: Any,
        actor: nn.Module,
        critic: nn.Module,
        actor_optimizer: optax.GradientTransformation,
        critic_optimizer: optax.GradientTransformation,
        alpha_optimizer: optax.GradientTransformation | None = None,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        if alpha_optimizer is None:
            alpha_optimizer = critic_optimizer
        check_agent_arguments(
            "SAC", config, SACConfig, env,
            networks={"actor": actor, "critic": critic},
            optimizers={"actor_optimizer": actor_optimizer, "critic_optimizer": critic_optimizer,
                        "alpha_optimizer": alpha_optimizer},
        )  # fmt: skip
        self.discrete, self.action_dim = _check_heads(env, actor, critic)
        recurrent = _has_memory(actor) or _has_memory(critic)
        memory = actor.torso if _has_memory(actor) else critic.torso
        config = resolve_replay_sequences("SAC", config, recurrent, type(memory).__name__)
        self.config = config
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        # Evaluation runs on the env as given, wrappers included (not on its innermost env).
        self._evaluation_env = env
        self.actor = actor
        self.critic = critic
        self.alpha = Alpha(initial=float(config.initial_alpha))
        if config.max_grad_norm is not None:
            clip = optax.clip_by_global_norm(config.max_grad_norm)
            actor_optimizer = optax.chain(clip, actor_optimizer)
            critic_optimizer = optax.chain(clip, critic_optimizer)
            alpha_optimizer = optax.chain(clip, alpha_optimizer)
        self.actor_optimizer = actor_optimizer
        self.critic_optimizer = critic_optimizer
        self.alpha_optimizer = alpha_optimizer
        self.metrics_callback = metrics_callback
        self.recurrent = recurrent
        # A twin head scores both estimates on one torso; any other head is held twice.
        self.critic_copies = 1 if isinstance(critic.head, TwinContinuousQNetwork) else 2
        self.data_parallel = data_parallel_for("SAC", env, config.num_envs, config.num_devices)
        # Env axis of each field that has one; a critic held twice stacks its carry first.
        self._env_axes = {**dict.fromkeys(_ENV_AXIS_FIELDS, 0),
                          "critic_carry": 0 if self.critic_copies == 1 else 1}  # fmt: skip
        if config.target_entropy is not None:
            self.target_entropy = float(config.target_entropy)
        elif self.discrete:
            self.target_entropy = _DISCRETE_ENTROPY_FRACTION * math.log(self.action_dim)
        else:
            self.target_entropy = -float(self.action_dim)
        self.buffer = SequenceBuffer(
            num_envs=config.num_envs,
            capacity=config.buffer_size // config.num_envs,
            sequence_length=config.stored_sequence_length,
        )
        # One compiled program instead of hundreds of eager dispatches.
        self._init_jit = jax.jit(self._init)
        self._train_jit = jax.jit(self._train, static_argnames="num_iterations")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> SACState:
        """Initial parameters (target critic = critic), optimizer states, an empty buffer,
        a reset env (jitted).

        Args:
            key: a PRNG key (vmap over keys to initialise several seeds).
        """
        return self._init_jit(key)

    def _init(self, key: jax.Array) -> SACState:
        actor_key, critic_key, env_key = jax.random.split(key, 3)
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(env_key, self.env_params)
        env_state = _strongly_typed(env_state)
        start = jnp.ones((num_envs,), bool)
        previous_action = self._zero_actions(num_envs)
        previous_reward = jnp.zeros((num_envs,), jnp.float32)
        inputs = (observation[:, None], start[:, None])
        extra = (previous_action[:, None], previous_reward[:, None])
        actor_carry = self.actor.initialize_carry(num_envs)
        actor_params = self.actor.init(actor_key, *inputs, actor_carry, *extra)
        scored = None if self.discrete else previous_action[:, None]

        def init_critic(key: jax.Array) -> Any:
            carry = self.critic.initialize_carry(num_envs)
            return self.critic.init(key, *inputs, carry, *extra, action=scored)

        if self.critic_copies == 1:
            critic_params = init_critic(critic_key)
        else:
            # Two separate inits, stacked: a vmapped init would batch the orthogonal
            # initialisers' QR decompositions, which XLA compiles slowly on CPU.
            first, second = jax.random.split(critic_key)
            critic_params = jax.tree.map(
                lambda a, b: jnp.stack([a, b]), init_critic(first), init_critic(second)
            )
        alpha_params = self.alpha.init(jax.random.key(0))
        example = {
            "observation": observation[0],
            "episode_start": start[0],
            "previous_action": previous_action[0],
            "previous_reward": previous_reward[0],
            "action": previous_action[0],
            "reward": previous_reward[0],
            "terminated": start[0],
            "final_observation": observation[0],
        }
        state = SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            alpha_params=alpha_params,
            actor_optimizer_state=self.actor_optimizer.init(actor_params),
            critic_optimizer_state=self.critic_optimizer.init(critic_params),
            alpha_optimizer_state=self.alpha_optimizer.init(alpha_params),
            buffer_state=self.buffer.init(example),
            env_state=env_state,
            observation=observation,
            episode_start=start,
            previous_action=previous_action,
            previous_reward=previous_reward,
            actor_carry=actor_carry,
            critic_carry=self._critic_carry(num_envs),
            env_steps=jnp.zeros((), jnp.int32),
            gradient_steps=jnp.zeros((), jnp.int32),
            update_count=jnp.zeros((), jnp.int32),
            metrics=_empty_metrics(),
            evaluation=EvaluationResult.empty(num_envs, 1),
        )
        return self._place(state)

    def train(self, key: jax.Array, state: SACState, num_steps: int) -> SACState:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` iterations, warning
        when ``num_steps`` is not a multiple of that. ``num_steps`` is static.
        ``jax.vmap(agent.train, in_axes=(0, 0, None))`` trains several seeds of
        a JAX-native env at once.

        Returns:
            The new state; ``state.metrics`` holds ``[num_iterations]`` arrays,
            see :data:`SAC_METRIC_NAMES`.
        """
        iterations = num_iterations("SAC.train", num_steps, self.config.steps_per_iteration)
        state = state.replace(metrics=put_replicated(self.data_parallel, _empty_metrics()))
        return self._train_jit(key, state, num_iterations=iterations)

    def evaluate(
        self,
        key: jax.Array,
        state: SACState,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> SACState:
        """Run complete episodes with the deterministic policy (the distribution's mode).

        Continuous: ``tanh`` of the Gaussian mean, rescaled to the bounds;
        discrete: the most likely action. Results go to ``state.evaluation``;
        parameters, the buffer, optimizer states, counters, carries and
        training metrics are never changed. The training env is handled as in
        :meth:`memorax.algorithms.PPO.evaluate` (pass ``env=`` to evaluate on a
        separate env with the same spaces).
        """
        return evaluate_agent(
            "SAC", key, state, state.actor_params,
            num_episodes=num_episodes, max_steps=max_steps, env=env, env_params=env_params,
            training_env=self._evaluation_env, training_env_params=self.env_params,
            evaluate_jit=self._evaluate_jit, reset_jit=self._reset_jit,
        )  # fmt: skip

    def reset_env(self, key: jax.Array, state: SACState) -> SACState:
        """Start fresh episodes in the training env, keeping parameters, buffer and counters."""
        return self._reset_jit(key, state)

    # ------------------------------------------------------------------ training

    def _place(self, state: SACState) -> SACState:
        """Data-parallel: env-axis fields (replay included) split over the mesh, the rest
        replicated."""
        return place(self.data_parallel, state, self._env_axes)

    def _split_runner(self, runner: tuple) -> tuple:
        """Data-parallel: the acting loop's carry split along each part's env axis (the
        critic carry last)."""
        *others, critic_carry = runner
        critic_axis = self._env_axes["critic_carry"]
        return (*split(self.data_parallel, tuple(others)),
                split(self.data_parallel, critic_carry, critic_axis))  # fmt: skip

    def _train(self, key: jax.Array, state: SACState, num_iterations: int) -> SACState:
        config = self.config
        actor, env, env_params = self.actor, self.env, self.env_params
        num_envs, num_steps = config.num_envs, config.num_steps
        data_parallel = self.data_parallel

        def iteration(state: SACState, iteration_key: jax.Array):
            state = self._place(state)
            rollout_key, learn_key = jax.random.split(iteration_key)
            explore = state.env_steps < config.learning_starts

            # 1. Act with a policy sample (uniform before learning starts), num_steps times.
            def env_step(runner: tuple, step_key: jax.Array):
                (env_state, observation, start, prev_action, prev_reward,
                 actor_carry, critic_carry) = runner  # fmt: skip
                policy_key, random_key, env_key = jax.random.split(step_key, 3)
                inputs = (observation[:, None], start[:, None])
                extra = (prev_action[:, None], prev_reward[:, None])
                actor_carry, policy = _apply(actor, state.actor_params, *inputs, actor_carry,
                                             *extra)  # fmt: skip
                action = jnp.where(
                    explore,
                    self._random_actions(random_key, num_envs),
                    self._policy_sample(policy, policy_key)[:, 0],
                )
                critic_carry, q = self._critic_apply(
                    state.critic_params, critic_carry, *inputs, *extra,
                    action=None if self.discrete else action[:, None],
                )  # fmt: skip
                q_taken = self._taken(jnp.min(q, axis=0), action[:, None])[:, 0]
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
                    "final_observation": step.info["final_observation"],
                }
                runner = (
                    step.state,
                    step.observation,
                    done,
                    jnp.where(_expand(done, action), jnp.zeros_like(action), action),
                    jnp.where(done, 0.0, step.reward).astype(jnp.float32),
                    actor_carry,
                    critic_carry,
                )
                outputs = (transition, step.info["episode"], q_taken)
                return self._split_runner(runner), split(data_parallel, outputs)

            runner = (state.env_state, state.observation, state.episode_start,
                      state.previous_action, state.previous_reward, state.actor_carry,
                      state.critic_carry)  # fmt: skip
            runner, (rollout, episode, q_taken) = jax.lax.scan(
                env_step, runner, jax.random.split(rollout_key, num_steps)
            )

            # 2. Store the steps, batch-major [num_envs, num_steps, ...]; each device
            # writes the steps of its own env copies into its part of the buffer.
            steps = split(data_parallel, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rollout))
            buffer_state = split(data_parallel, self.buffer.add(state.buffer_state, steps))
            env_steps = state.env_steps + num_envs * num_steps

            # 3. Gradient steps, once the buffer and learning_starts allow.
            ready = self.buffer.can_sample(buffer_state) & (env_steps >= config.learning_starts)

            def gradient_step(learner: _Learner, step_key: jax.Array):
                sample_key, critic_key, actor_key = jax.random.split(step_key, 3)
                # The same global sample as on one device, split over the devices.
                sample = self.buffer.sample(buffer_state, sample_key, config.batch_size)
                data = split(data_parallel, sample.experience)
                alpha = self._alpha(learner.alpha_params)
                (critic_loss, _), grads = jax.value_and_grad(self._critic_loss, has_aux=True)(
                    learner.critic_params, learner.actor_params, learner.target_critic_params,
                    alpha, data, critic_key,
                )  # fmt: skip
                critic_params, critic_opt = _apply_gradients(
                    self.critic_optimizer, grads, learner.critic_optimizer_state,
                    learner.critic_params,
                )  # fmt: skip
                (actor_loss, entropy), grads = jax.value_and_grad(self._actor_loss, has_aux=True)(
                    learner.actor_params, critic_params, alpha, data, actor_key
                )
                actor_params, actor_opt = _apply_gradients(
                    self.actor_optimizer, grads, learner.actor_optimizer_state,
                    learner.actor_params,
                )  # fmt: skip
                alpha_loss, grads = jax.value_and_grad(self._alpha_loss)(
                    learner.alpha_params, entropy
                )
                alpha_params, alpha_opt = _apply_gradients(
                    self.alpha_optimizer, grads, learner.alpha_optimizer_state,
                    learner.alpha_params,
                )  # fmt: skip
                if not config.learn_alpha:
                    alpha_params, alpha_opt = learner.alpha_params, learner.alpha_optimizer_state
                count = learner.gradient_steps + ready.astype(jnp.int32)
                new = _Learner(
                    actor_params=actor_params,
                    critic_params=critic_params,
                    target_critic_params=periodic_target_update(
                        critic_params,
                        learner.target_critic_params,
                        count,
                        config.target_update_interval,
                        config.tau,
                        ready,
                    ),
                    alpha_params=alpha_params,
                    actor_optimizer_state=actor_opt,
                    critic_optimizer_state=critic_opt,
                    alpha_optimizer_state=alpha_opt,
                    gradient_steps=count,
                )
                # Before learning starts the step is computed but not applied.
                learner = jax.tree.map(lambda a, b: jnp.where(ready, a, b), new, learner)
                losses = {"critic_loss": critic_loss, "actor_loss": actor_loss,
                          "alpha_loss": alpha_loss, "entropy": entropy}  # fmt: skip
                return learner, losses

            learner = _Learner(
                actor_params=state.actor_params,
                critic_params=state.critic_params,
                target_critic_params=state.target_critic_params,
                alpha_params=state.alpha_params,
                actor_optimizer_state=state.actor_optimizer_state,
                critic_optimizer_state=state.critic_optimizer_state,
                alpha_optimizer_state=state.alpha_optimizer_state,
                gradient_steps=state.gradient_steps,
            )
            if config.gradient_steps:
                learner, losses = jax.lax.scan(
                    gradient_step, learner, jax.random.split(learn_key, config.gradient_steps)
                )
                loss_metrics = {
                    name: jnp.where(ready, jnp.mean(value), jnp.nan)
                    for name, value in losses.items()
                }
            else:
                loss_metrics = {name: jnp.full((), jnp.nan) for name in _LOSS_NAMES}

            # 4. Metrics of this iteration.
            episode_count = jnp.sum(episode["done"], dtype=jnp.int32)
            per_episode = jnp.where(episode_count > 0, 1.0 / episode_count, jnp.nan)
            update_count = state.update_count + 1
            metrics = {
                **loss_metrics,
                "alpha": self._alpha(learner.alpha_params),
                "q_value": jnp.mean(q_taken),
                "episode_return": jnp.sum(episode["return"]) * per_episode,
                "episode_length": jnp.sum(episode["length"], dtype=jnp.float32) * per_episode,
                "episode_count": episode_count,
                "env_steps": env_steps,
                "gradient_steps": learner.gradient_steps,
                "update": update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)

            (env_state, observation, start, prev_action, prev_reward,
             actor_carry, critic_carry) = runner  # fmt: skip
            state = state.replace(
                actor_params=learner.actor_params,
                critic_params=learner.critic_params,
                target_critic_params=learner.target_critic_params,
                alpha_params=learner.alpha_params,
                actor_optimizer_state=learner.actor_optimizer_state,
                critic_optimizer_state=learner.critic_optimizer_state,
                alpha_optimizer_state=learner.alpha_optimizer_state,
                buffer_state=buffer_state,
                env_state=env_state,
                observation=observation,
                episode_start=start,
                previous_action=prev_action,
                previous_reward=prev_reward,
                actor_carry=actor_carry,
                critic_carry=critic_carry,
                env_steps=env_steps,
                gradient_steps=learner.gradient_steps,
                update_count=update_count,
            )
            return state, metrics

        state, metrics = jax.lax.scan(iteration, state, jax.random.split(key, num_iterations))
        return self._place(state.replace(metrics=metrics))

    # ------------------------------------------------------------------ losses

    def _critic_loss(
        self, critic_params: Any, actor_params: Any, target_params: Any, alpha: jax.Array,
        data: dict[str, jax.Array], key: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
        """``0.5 * sum_i mean (Q_i(o_t, a_t) - y_t)^2`` over the learned steps, and mean ``Q``.

        ``y_t = r_t + gamma * (1 - terminated_t) * V'(final_observation_t)``.
        """
        next_policy = self._actor_unroll(actor_params, data, following=True)
        if self.discrete:
            target_next = self._following_q(target_params, data, None, None)
            log_probs = next_policy.log_probs
            next_value = jnp.sum(
                jnp.exp(log_probs) * (jnp.min(target_next, axis=0) - alpha * log_probs), axis=-1
            )
        else:
            next_action, next_log_prob = next_policy.sample_and_log_prob(key)
            target_next = self._following_q(target_params, data, data["action"], next_action)
            next_value = jnp.min(target_next, axis=0) - alpha * next_log_prob
        # One-step targets: the n-step helper with n = 1 bootstraps unless terminated.
        targets = n_step_targets(
            data["reward"], next_value, data["terminated"], data["terminated"], self.config.gamma, 1
        )
        targets = jax.lax.stop_gradient(self._learned(targets))
        q, _ = self._critic_unroll(critic_params, data, data["action"], None, following=False)
        q = self._learned(self._taken(q, data["action"]), axis=2)
        loss = 0.5 * jnp.sum(jnp.mean(jnp.square(q - targets), axis=(1, 2)))
        return loss, jnp.mean(q)

    def _actor_loss(
        self, actor_params: Any, critic_params: Any, alpha: jax.Array,
        data: dict[str, jax.Array], key: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
        """``mean(alpha log pi(a | o) - min_i Q_i(o, a))`` over the learned steps, and the
        policy's entropy there (no gradient)."""
        policy = self._actor_unroll(actor_params, data, following=False)
        critic_params = jax.lax.stop_gradient(critic_params)
        if self.discrete:
            q, _ = self._critic_unroll(critic_params, data, None, None, following=False)
            log_probs = policy.log_probs
            probs = jnp.exp(log_probs)
            per_step = jnp.sum(probs * (alpha * log_probs - jnp.min(q, axis=0)), axis=-1)
            entropy = -jnp.sum(probs * log_probs, axis=-1)
        else:
            action, log_prob = policy.sample_and_log_prob(key)
            q, _ = self._critic_unroll(critic_params, data, action, None, following=False)
            per_step = alpha * log_prob - jnp.min(q, axis=0)
            entropy = -log_prob
        loss = jnp.mean(self._learned(per_step))
        return loss, jax.lax.stop_gradient(jnp.mean(self._learned(entropy)))

    def _alpha_loss(self, alpha_params: Any, entropy: jax.Array) -> jax.Array:
        """``log_alpha * (entropy - target_entropy)``: alpha grows while entropy is too low."""
        log_alpha = jnp.log(self._alpha(alpha_params))
        return log_alpha * (entropy - self.target_entropy)

    def _alpha(self, alpha_params: Any) -> jax.Array:
        """The temperature ``exp(log_alpha)``, a scalar."""
        return cast(jax.Array, self.alpha.apply(alpha_params))

    def _learned(self, x: jax.Array, axis: int = 1) -> jax.Array:
        """The steps learned from (after the burn-in) along the time ``axis``."""
        # Set by the constructor for the networks (never None on an agent's config).
        start, length = self.config.burn_in_length or 0, self.config.sequence_length or 1
        return jax.lax.slice_in_dim(x, start, start + length, axis=axis)

    # ------------------------------------------------------------------ networks

    def _actor_unroll(self, params: Any, data: dict[str, jax.Array], *, following: bool) -> Any:
        """The policy at every step of ``[B, L]`` sequences, scanned from the initial carry.

        ``following=False``: at ``observation_t``; True: at ``final_observation_t``
        with the carry right after step ``t`` (before any reset). Leaves ``[B, L, ...]``.
        """
        actor = self.actor
        batch, length = data["observation"].shape[:2]
        if not _has_memory(actor):
            # No carry: every step at once.
            if following:
                inputs = (data["final_observation"], jnp.zeros((batch, length), bool), None,
                          data["action"], data["reward"])  # fmt: skip
            else:
                inputs = (data["observation"], data["episode_start"], None,
                          data["previous_action"], data["previous_reward"])  # fmt: skip
            return _apply(actor, params, *inputs)[1]

        def one_step(carry: Any, step: dict[str, jax.Array]):
            carry, policy = _apply(
                actor, params, step["observation"][:, None], step["episode_start"][:, None],
                carry, step["previous_action"][:, None], step["previous_reward"][:, None],
            )  # fmt: skip
            if following:
                _, policy = _apply(
                    actor, params, step["final_observation"][:, None],
                    jnp.zeros((batch, 1), bool), carry,
                    step["action"][:, None], step["reward"][:, None],
                )  # fmt: skip
            return carry, jax.tree.map(lambda x: x[:, 0], policy)

        _, policy = jax.lax.scan(one_step, actor.initialize_carry(batch), _time_major(data))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), policy)

    def _critic_unroll(
        self, params: Any, data: dict[str, jax.Array], action: jax.Array | None,
        next_action: jax.Array | None, *, following: bool,
    ) -> tuple[jax.Array, jax.Array | None]:  # fmt: skip
        """Both critics' ``Q`` at every step of ``[B, L]`` sequences, from the initial carry.

        Returns ``(q, next_q)``, each ``[2, B, L]`` (continuous, scoring ``action``
        and ``next_action`` ``[B, L, A]``) or ``[2, B, L, n]`` (discrete; actions
        ignored). ``q`` is at ``observation_t``; ``next_q`` (only when
        ``following``) at ``final_observation_t`` with the carry right after step
        ``t``. Discrete critics score no action, so ``action`` may be ``None``.
        """
        batch, length = data["observation"].shape[:2]
        if not _has_memory(self.critic):
            # No carry: every step at once.
            q = self._critic_apply(
                params, self._critic_carry(batch) , data["observation"], data["episode_start"],
                data["previous_action"], data["previous_reward"],
                action=None if self.discrete else action,
            )[1]  # fmt: skip
            if not following:
                return q, None
            next_q = self._critic_apply(
                params, self._critic_carry(batch), data["final_observation"],
                jnp.zeros((batch, length), bool), data["action"], data["reward"],
                action=None if self.discrete else next_action,
            )[1]  # fmt: skip
            return q, next_q
        steps = _time_major(data)
        scored = {
            "action": None if action is None or self.discrete else jnp.swapaxes(action, 0, 1),
            "next_action": None
            if next_action is None or self.discrete
            else jnp.swapaxes(next_action, 0, 1),
        }

        def one_step(carry: Any, xs: tuple):
            step, scored = xs
            head_action = scored["action"]
            carry_after, q = self._critic_apply(
                params, carry, step["observation"][:, None], step["episode_start"][:, None],
                step["previous_action"][:, None], step["previous_reward"][:, None],
                action=None if head_action is None else head_action[:, None],
            )  # fmt: skip
            next_q = None
            if following:
                next_head_action = scored["next_action"]
                _, next_q = self._critic_apply(
                    params, carry_after, step["final_observation"][:, None],
                    jnp.zeros((batch, 1), bool),
                    step["action"][:, None], step["reward"][:, None],
                    action=None if next_head_action is None else next_head_action[:, None],
                )  # fmt: skip
                next_q = next_q[:, :, 0]
            return carry_after, (q[:, :, 0], next_q)

        _, (q, next_q) = jax.lax.scan(one_step, self._critic_carry(batch), (steps, scored))
        # Scanned time-major [L, 2, B, ...] -> [2, B, L, ...].
        q = jnp.moveaxis(q, 0, 2)
        return q, None if next_q is None else jnp.moveaxis(next_q, 0, 2)

    def _following_q(
        self, params: Any, data: dict[str, jax.Array], action: jax.Array | None,
        next_action: jax.Array | None,
    ) -> jax.Array:  # fmt: skip
        """``next_q`` of :meth:`_critic_unroll` with ``following=True``."""
        return cast(jax.Array, self._critic_unroll(params, data, action, next_action,
                                                   following=True)[1])  # fmt: skip

    def _critic_apply(
        self, params: Any, carry: Any, observation: jax.Array, start: jax.Array,
        previous_action: jax.Array, previous_reward: jax.Array, *, action: jax.Array | None,
    ) -> tuple[Any, jax.Array]:  # fmt: skip
        """One critic call on ``[B, T]`` inputs: ``(carry, q)``, ``q`` ``[2, B, T(, n)]``."""
        critic = self.critic

        def apply(params: Any, carry: Any) -> tuple[Any, jax.Array]:
            return _apply(critic, params, observation, start, carry, previous_action,
                          previous_reward, action)  # fmt: skip

        if self.critic_copies == 1:
            return apply(params, carry)
        return jax.vmap(apply)(params, carry)

    def _critic_carry(self, batch: int) -> Any:
        carry = self.critic.initialize_carry(batch)
        if self.critic_copies == 1:
            return carry
        return jax.tree.map(lambda x: jnp.stack([x, x]), carry)

    def _taken(self, q: jax.Array, action: jax.Array) -> jax.Array:
        """Discrete ``q [..., n]``: the value of ``action [...]``; continuous: ``q`` itself."""
        if not self.discrete:
            return q
        index = jnp.broadcast_to(action, q.shape[:-1])[..., None].astype(jnp.int32)
        return jnp.take_along_axis(q, index, axis=-1)[..., 0]

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
            if self.discrete:
                action = action.astype(jnp.int32)
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

    def _reset_training_env(self, key: jax.Array, state: SACState) -> SACState:
        num_envs = self.config.num_envs
        observation, env_state = self.env.reset(key, self.env_params)
        state = state.replace(
            env_state=_strongly_typed(env_state),
            observation=observation,
            episode_start=jnp.ones((num_envs,), bool),
            previous_action=self._zero_actions(num_envs),
            previous_reward=jnp.zeros((num_envs,), jnp.float32),
            actor_carry=self.actor.initialize_carry(num_envs),
            critic_carry=self._critic_carry(num_envs),
        )
        return self._place(state)

    # ------------------------------------------------------------------ actions

    def _policy_sample(self, policy: Any, key: jax.Array) -> jax.Array:
        action = policy.sample(key)
        return action.astype(jnp.int32) if self.discrete else action

    def _random_actions(self, key: jax.Array, num_envs: int) -> jax.Array:
        if self.discrete:
            return jax.random.randint(key, (num_envs,), 0, self.action_dim, jnp.int32)
        return jax.random.uniform(key, (num_envs, self.action_dim), jnp.float32, -1.0, 1.0)

    def _zero_actions(self, num_envs: int) -> jax.Array:
        if self.discrete:
            return jnp.zeros((num_envs,), jnp.int32)
        return jnp.zeros((num_envs, self.action_dim), jnp.float32)

    def _env_action(self, action: jax.Array) -> jax.Array:
        """Policy action -> env action: offset discrete actions, rescale continuous ones."""
        space = self.env.action_space
        if isinstance(space, Discrete):
            return action.astype(space.dtype) + space.start
        if not isinstance(space, Box):  # checked at construction; narrows the type
            raise TypeError(f"SAC: unsupported action space {space}.")
        return scale_to_box(action, space)


_ENV_AXIS_FIELDS = ("env_state", "observation", "episode_start", "previous_action",
                    "previous_reward", "actor_carry", "critic_carry", "buffer_state")  # fmt: skip
"""``SACState`` fields with an env axis (the replay buffer's too), split over devices when
data-parallel; the critic carry's is axis 1 for a critic held twice."""


class _Learner(struct.PyTreeNode):
    """What a gradient step changes."""

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    alpha_params: Any
    actor_optimizer_state: Any
    critic_optimizer_state: Any
    alpha_optimizer_state: Any
    gradient_steps: jax.Array


def _check_heads(env: Environment, actor: nn.Module, critic: nn.Module) -> tuple[bool, int]:
    """``(discrete, action_dim)`` for ``env``, or a clear error about the networks' heads."""
    space = env.action_space
    actor_head, critic_head = getattr(actor, "head", None), getattr(critic, "head", None)
    actor_name, critic_name = type(actor_head).__name__, type(critic_head).__name__
    if isinstance(space, Discrete):
        n = int(space.n)
        if not isinstance(actor_head, Categorical) or actor_head.action_dim != n:
            raise ValueError(
                f"SAC: {env.name} has discrete actions {space}, so the actor's head must be "
                f"Categorical({n}); got {_describe(actor_head)}."
            )
        if not isinstance(critic_head, DiscreteQNetwork) or critic_head.action_dim != n:
            raise ValueError(
                f"SAC: {env.name} has discrete actions {space}, so the critic's head must be "
                f"DiscreteQNetwork({n}) (Q for every action); got {_describe(critic_head)}."
            )
        return True, n
    if isinstance(space, Box):
        size = box_action_dim(space, "SAC")
        if not isinstance(actor_head, SquashedGaussian) or actor_head.action_dim != size:
            raise ValueError(
                f"SAC: {env.name} has continuous actions {space}, so the actor's head must be "
                f"SquashedGaussian({size}); got {_describe(actor_head)}."
            )
        if not isinstance(critic_head, TwinContinuousQNetwork | ContinuousQNetwork):
            raise ValueError(
                f"SAC: {env.name} has continuous actions {space}, so the critic's head must be "
                f"TwinContinuousQNetwork or ContinuousQNetwork (it scores an action); got "
                f"{critic_name}."
            )
        return False, size
    raise ValueError(
        f"SAC supports Discrete and bounded Box action spaces; {env.name} has {space} "
        f"(actor head {actor_name})."
    )


def _describe(head: Any) -> str:
    dim = getattr(head, "action_dim", None)
    return type(head).__name__ + ("" if dim is None else f"({dim})")


def _apply_gradients(
    optimizer: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any
) -> tuple[Any, Any]:
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _time_major(data: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)


def _empty_metrics() -> dict[str, jax.Array]:
    integer = {"episode_count", "env_steps", "gradient_steps", "update"}
    return {
        name: jnp.zeros((0,), jnp.int32 if name in integer else jnp.float32)
        for name in SAC_METRIC_NAMES
    }


def _apply(network: nn.Module, params: Any, *args: Any) -> tuple[Any, Any]:
    """``network.apply`` typed as what a Network returns: ``(carry, output)``."""
    return network.apply(params, *args)


def _has_memory(network: nn.Module) -> bool:
    return is_sequence_model(getattr(network, "torso", None))


def _strongly_typed(tree: Any) -> Any:
    """``tree`` with weakly typed arrays (e.g. from Python scalars in an env's reset) made
    strong, as ``train`` returns them, so a state from ``init`` and one from ``train``
    share one compiled ``train``."""
    return jax.tree.map(
        lambda x: jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x, tree
    )


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return jnp.reshape(mask, mask.shape + (1,) * (like.ndim - mask.ndim))
