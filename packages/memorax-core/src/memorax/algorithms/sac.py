"""Soft actor-critic (Haarnoja et al., 2018), continuous and discrete, with or without memory.

Each iteration, read top to bottom in :meth:`SAC._iterate`: every env copy
acts for ``num_steps`` steps with a sample of the actor's policy (uniformly
random actions before ``learning_starts``), the steps go to a
:class:`~memorax.buffers.SequenceBuffer`, then ``gradient_steps`` updates
each, on one sampled batch:

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
(:func:`~memorax.algorithms.acting.scale_to_box`); expectations over ``a`` are
single reparametrised samples. Discrete actions (Christodoulou, 2019): a
:class:`~memorax.networks.Categorical` actor and a critic that outputs
``Q`` for every action, so every expectation over actions is an exact sum.

Memory: actor and critic are separate networks, each with its own carry, kept
while acting (the critic scores the action taken: the ``q_value`` metric).
Training runs both over sampled sequences of ``burn_in_length +
sequence_length`` steps from their initial carries, the burn-in only warming
them up, as in :mod:`memorax.algorithms.dqn` (defaults with a memory torso:
20 learned steps after 10 of burn-in; ``sequence_length=1`` is refused).
Data-parallel (``num_devices``): as DQN, carries and replay split with the
env copies.
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

from memorax.algorithms import replay
from memorax.algorithms.acting import EvaluationResult, StepInput, apply_network, scale_to_box
from memorax.algorithms.agent import Agent, apply_gradients, with_gradient_clipping
from memorax.algorithms.checks import (
    BOOL,
    BURN_IN,
    DEVICES,
    DISCOUNT,
    FINITE,
    NON_NEGATIVE_INT,
    OPTIONAL_POSITIVE,
    POSITIVE,
    POSITIVE_INT,
    SEQUENCE,
    check_actor_critic_heads,
    has_memory,
    resolve_replay_sequences,
    setting,
)
from memorax.algorithms.data_parallel import LaidOutByFields, OnEnvAxis
from memorax.algorithms.metrics import MetricsCallback
from memorax.algorithms.returns import n_step_targets
from memorax.buffers import BufferState
from memorax.envs import Box, Discrete, Environment
from memorax.networks import Alpha, TwinContinuousQNetwork

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
critic run along the env stream on its own carry; the other keys are as in
:data:`~memorax.algorithms.DQN_METRIC_NAMES`.
"""

_DISCRETE_ENTROPY_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class SACConfig(replay.ReplayConfig):
    """SAC hyperparameters (the first seven as :class:`~memorax.algorithms.replay.ReplayConfig`;
    iterations that start before ``learning_starts`` act uniformly at random).

    Attributes:
        tau: Polyak coefficient of the target critic update, in ``(0, 1]``
            (``1``: hard copy).
        target_update_interval: update the target critic every this many
            gradient steps (``1`` with a small ``tau`` is SAC's default; a hard
            copy every ``N`` steps is ``tau=1.0, target_update_interval=N``).
        initial_alpha: the entropy temperature at the start, ``> 0``.
        learn_alpha: tune ``alpha`` towards ``target_entropy``; False keeps
            ``initial_alpha``.
        target_entropy: the policy entropy ``alpha`` is tuned to reach. ``None``:
            ``-action_dim`` for continuous actions, ``0.5 * log(n)`` for ``n``
            discrete ones (half the maximum entropy). Higher fractions (0.98 in
            Christodoulou's discrete SAC, 0.89 in CleanRL's) diverge on
            CartPole: the policy cannot get that close to uniform while the
            critic's noise grows with ``alpha``, so ``alpha`` climbs without
            end (65 after 100k steps, critic loss in the thousands).
        max_grad_norm: clip each gradient (actor, critic, alpha) to this
            global norm (``None``: no clipping).
        sequence_length, burn_in_length: as in :class:`~memorax.algorithms.DQNConfig`
            (``None``: 1 and 0 for feed-forward networks, 20 and 10 when the
            actor or the critic has a memory torso).
        num_devices: as :attr:`memorax.algorithms.DQNConfig.num_devices`;
            parameters, optimizer states and the temperature are replicated.
    """

    batch_size: int = setting(256, POSITIVE_INT)
    learning_starts: int = setting(5_000, NON_NEGATIVE_INT)
    tau: float = setting(0.005, DISCOUNT)
    target_update_interval: int = setting(1, POSITIVE_INT)
    initial_alpha: float = setting(1.0, POSITIVE)
    learn_alpha: bool = setting(True, BOOL)
    target_entropy: float | None = setting(None, FINITE)
    max_grad_norm: float | None = setting(None, OPTIONAL_POSITIVE)
    sequence_length: int | None = setting(None, SEQUENCE)
    burn_in_length: int | None = setting(None, BURN_IN)
    num_devices: int | None = setting(None, DEVICES)

    @property
    def _sequence_terms(self) -> str:
        return "burn_in_length + sequence_length"


class SACState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree (vmappable over seeds); the
    fields not described here are as in :class:`~memorax.algorithms.DQNState`.

    Attributes:
        actor_params, critic_params, target_critic_params: Flax variables. A
            critic whose head is not a twin (``ContinuousQNetwork``,
            ``DiscreteQNetwork``) is held twice, stacked on a leading axis of 2.
        alpha_params: the :class:`~memorax.networks.Alpha` variables (``log_alpha``).
        actor_optimizer_state, critic_optimizer_state, alpha_optimizer_state: optax states.
        previous_action: ``[num_envs]`` int32 (discrete) or ``[num_envs, A]``
            float32 in ``[-1, 1]`` (continuous, before rescaling), zero at an
            episode start.
        actor_carry, critic_carry: the torsos' carries (``None`` for
            feed-forward; the critic's stacked on a leading axis of 2 for a
            critic held twice).
        metrics: dict of ``[num_iterations]`` arrays from the last ``train`` call
            (keys: :data:`SAC_METRIC_NAMES`); ``[0]`` arrays before any training.
    """

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    alpha_params: Any
    actor_optimizer_state: Any
    critic_optimizer_state: Any
    alpha_optimizer_state: Any
    buffer_state: LaidOutByFields[BufferState]
    env_state: OnEnvAxis[Any]
    observation: OnEnvAxis[jax.Array]
    episode_start: OnEnvAxis[jax.Array]
    previous_action: OnEnvAxis[jax.Array]
    previous_reward: OnEnvAxis[jax.Array]
    actor_carry: OnEnvAxis[Any]
    critic_carry: OnEnvAxis[Any]
    env_steps: jax.Array
    gradient_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


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


class SAC(Agent[SACConfig, SACState]):
    """SAC with separate actor and (twin) critic networks, for JAX-native and callback envs.

    Args:
        config: :class:`SACConfig`.
        env: a batched env from ``make(...)`` with a ``Discrete`` or bounded
            ``Box`` action space.
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

    config_class = SACConfig
    state_class = SACState
    metric_names = SAC_METRIC_NAMES

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
        super().__init__(
            config,
            env,
            env_params,
            networks={"actor": actor, "critic": critic},
            optimizers={
                "actor_optimizer": actor_optimizer,
                "critic_optimizer": critic_optimizer,
                "alpha_optimizer": alpha_optimizer,
            },
            metrics_callback=metrics_callback,
        )
        self.discrete, self.action_dim = check_actor_critic_heads(env, actor, critic)
        config = self.config = resolve_replay_sequences("SAC", self.config, [actor, critic])
        self.actor, self.critic = actor, critic
        self.alpha = Alpha(initial=float(config.initial_alpha))
        clip = config.max_grad_norm
        self.actor_optimizer = with_gradient_clipping(actor_optimizer, clip)
        self.critic_optimizer = with_gradient_clipping(critic_optimizer, clip)
        self.alpha_optimizer = with_gradient_clipping(alpha_optimizer, clip)
        self.carry_networks = {"actor_carry": actor, "critic_carry": critic}
        self.policy_network = actor
        # A twin head scores both estimates on one torso; any other head is held twice,
        # its carry stacked first, so the carry's env axis is 1.
        self.critic_copies = 1 if isinstance(critic.head, TwinContinuousQNetwork) else 2
        if self.critic_copies == 2:
            self.env_axis_overrides = {"critic_carry": 1}
        if config.target_entropy is not None:
            self.target_entropy = float(config.target_entropy)
        elif self.discrete:
            self.target_entropy = _DISCRETE_ENTROPY_FRACTION * math.log(self.action_dim)
        else:
            self.target_entropy = -float(self.action_dim)
        self.buffer = config.sequence_buffer()

    def _initial_carries(self, num_envs: int) -> dict[str, Any]:
        return {
            "actor_carry": self.actor.initialize_carry(num_envs),
            "critic_carry": self._critic_carry(num_envs),
        }

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> SACState:
        actor_key, critic_key = keys
        actor_params = self._init_network(self.actor, actor_key, acting, acting["actor_carry"])
        scored = {} if self.discrete else {"action": acting["previous_action"][:, None]}
        carry = self.critic.initialize_carry(self.env.num_envs)

        def init_critic(key: jax.Array) -> Any:
            return self._init_network(self.critic, key, acting, carry, **scored)

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
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            alpha_params=alpha_params,
            actor_optimizer_state=self.actor_optimizer.init(actor_params),
            critic_optimizer_state=self.critic_optimizer.init(critic_params),
            alpha_optimizer_state=self.alpha_optimizer.init(alpha_params),
            buffer_state=self.buffer.init(replay.example_step(acting)),
            gradient_steps=jnp.zeros((), jnp.int32),
            **acting,
            **self._counters(),
        )

    def _policy_params(self, state: SACState) -> Any:
        return state.actor_params

    def _greedy_action(self, output: Any) -> jax.Array:
        action = output.mode()[:, 0]
        return action.astype(jnp.int32) if self.discrete else action

    def _env_action(self, action: jax.Array) -> jax.Array:
        """Discrete: offset by the space's start; continuous: rescaled from ``[-1, 1]``."""
        space = self.env.action_space
        if isinstance(space, Discrete):
            return action.astype(space.dtype) + space.start
        return scale_to_box(action, cast(Box, space))

    def _iterate(self, key: jax.Array, state: SACState) -> tuple[SACState, dict, Any]:
        config = self.config
        rollout_key, learn_key = jax.random.split(key)
        explore = state.env_steps < config.learning_starts

        # 1. Act with a policy sample (uniform before learning starts), scoring it with
        # the critic; 2. store; 3. learn once replay allows.
        def policy(key: jax.Array, inputs: StepInput, carries: tuple) -> tuple:
            policy_key, random_key = jax.random.split(key)
            steps = inputs.with_time_axis()
            actor_carry, distribution = apply_network(
                self.actor, state.actor_params, steps, carries[0]
            )
            sampled = distribution.sample(policy_key)[:, 0]
            action = jnp.where(
                explore,
                self._random_actions(random_key, sampled.shape[0]),
                sampled.astype(jnp.int32) if self.discrete else sampled,
            )
            critic_carry, q = self._critic(
                state.critic_params, carries[1], steps, None if self.discrete else action[:, None]
            )
            q_taken = self._taken(jnp.min(q, axis=2), action[:, None])[:, 0]
            return (actor_carry, critic_carry), action, {"q_taken": q_taken}

        state, rollout = self._rollout(rollout_key, state, policy)
        buffer_state = replay.store(
            self.buffer, state.buffer_state, rollout.replay_record(), self.data_parallel
        )
        ready = self.buffer.can_sample(buffer_state) & (state.env_steps >= config.learning_starts)

        def gradient_step(learner: _Learner, key: jax.Array) -> tuple[_Learner, dict]:
            sample_key, critic_key, actor_key = jax.random.split(key, 3)
            # The same global sample as on one device, split over the devices.
            sample = self.buffer.sample(buffer_state, sample_key, config.batch_size)
            data = self._split(sample.experience)
            alpha = self._alpha(learner.alpha_params)
            (critic_loss, _), grads = jax.value_and_grad(self._critic_loss, has_aux=True)(
                learner.critic_params, learner, alpha, data, critic_key
            )
            critic_params, critic_opt = apply_gradients(
                self.critic_optimizer, grads, learner.critic_optimizer_state, learner.critic_params
            )
            (actor_loss, entropy), grads = jax.value_and_grad(self._actor_loss, has_aux=True)(
                learner.actor_params, critic_params, alpha, data, actor_key
            )
            actor_params, actor_opt = apply_gradients(
                self.actor_optimizer, grads, learner.actor_optimizer_state, learner.actor_params
            )
            alpha_loss, grads = jax.value_and_grad(self._alpha_loss)(learner.alpha_params, entropy)
            alpha_params, alpha_opt = apply_gradients(
                self.alpha_optimizer, grads, learner.alpha_optimizer_state, learner.alpha_params
            )
            if not config.learn_alpha:
                alpha_params, alpha_opt = learner.alpha_params, learner.alpha_optimizer_state
            count = learner.gradient_steps + 1
            target = replay.periodic_target_update(
                critic_params,
                learner.target_critic_params,
                count,
                config.target_update_interval,
                config.tau,
            )
            learner = _Learner(
                actor_params,
                critic_params,
                target,
                alpha_params,
                actor_opt,
                critic_opt,
                alpha_opt,
                count,
            )
            return learner, {
                "critic_loss": critic_loss,
                "actor_loss": actor_loss,
                "alpha_loss": alpha_loss,
                "entropy": entropy,
            }

        learner = _Learner(
            state.actor_params,
            state.critic_params,
            state.target_critic_params,
            state.alpha_params,
            state.actor_optimizer_state,
            state.critic_optimizer_state,
            state.alpha_optimizer_state,
            state.gradient_steps,
        )
        learner, stats = replay.learn(
            learn_key, learner, gradient_step, config.gradient_steps, ready
        )
        state = state.replace(
            buffer_state=buffer_state,
            **{field.name: getattr(learner, field.name) for field in dataclasses.fields(learner)},
        )
        metrics = {
            **stats,
            "alpha": self._alpha(learner.alpha_params),
            "q_value": jnp.mean(rollout.extras["q_taken"]),
            "gradient_steps": learner.gradient_steps,
        }
        return state, metrics, rollout.episode

    # ------------------------------------------------------------------ losses

    def _critic_loss(
        self, critic_params: Any, learner: _Learner, alpha: jax.Array, data: dict, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``0.5 * sum_i mean (Q_i(o_t, a_t) - y_t)^2`` over the learned steps, and mean ``Q``.

        ``y_t = r_t + gamma * (1 - terminated_t) * V'(final_observation_t)``, ``V'`` from
        the learner's actor and target critic.
        """
        target_params = learner.target_critic_params
        _, next_policy = self._actor_unroll(learner.actor_params, data, following=True)
        if self.discrete:
            _, target_next = self._critic_unroll(target_params, data, None, None, following=True)
            log_probs = next_policy.log_probs
            next_value = jnp.sum(
                jnp.exp(log_probs) * (jnp.min(target_next, axis=2) - alpha * log_probs), axis=-1
            )
        else:
            next_action, next_log_prob = next_policy.sample_and_log_prob(key)
            _, target_next = self._critic_unroll(
                target_params, data, data["action"], next_action, following=True
            )
            next_value = jnp.min(target_next, axis=2) - alpha * next_log_prob
        # One-step targets: the n-step helper with n = 1 bootstraps unless terminated.
        targets = n_step_targets(
            data["reward"], next_value, data["terminated"], data["terminated"], self.config.gamma, 1
        )
        targets = jax.lax.stop_gradient(self._learned(targets))
        q, _ = self._critic_unroll(critic_params, data, data["action"], None, following=False)
        q = self._learned(self._taken(q, data["action"][..., None]))
        loss = 0.5 * jnp.sum(jnp.mean(jnp.square(q - targets[..., None]), axis=(0, 1)))
        return loss, jnp.mean(q)

    def _actor_loss(
        self, actor_params: Any, critic_params: Any, alpha: jax.Array, data: dict, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``mean(alpha log pi(a | o) - min_i Q_i(o, a))`` over the learned steps, and the
        policy's entropy there (no gradient)."""
        policy, _ = self._actor_unroll(actor_params, data, following=False)
        critic_params = jax.lax.stop_gradient(critic_params)
        if self.discrete:
            q, _ = self._critic_unroll(critic_params, data, None, None, following=False)
            log_probs = policy.log_probs
            probs = jnp.exp(log_probs)
            per_step = jnp.sum(probs * (alpha * log_probs - jnp.min(q, axis=2)), axis=-1)
            entropy = -jnp.sum(probs * log_probs, axis=-1)
        else:
            action, log_prob = policy.sample_and_log_prob(key)
            q, _ = self._critic_unroll(critic_params, data, action, None, following=False)
            per_step = alpha * log_prob - jnp.min(q, axis=2)
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

    def _learned(self, x: jax.Array) -> jax.Array:
        """The steps learned from (after the burn-in) along the time axis 1."""
        start = self.config.burn_in_length
        return jax.lax.slice_in_dim(x, start, start + self.config.sequence_length, axis=1)  # type: ignore[operator]

    # ------------------------------------------------------------------ networks

    def _actor_unroll(
        self, params: Any, data: dict[str, jax.Array], *, following: bool
    ) -> tuple[Any, Any]:
        """The policy at every ``observation_t`` of ``[B, L]`` sequences and, ``following``,
        at every ``final_observation_t``, from the initial carry; leaves ``[B, L, ...]``."""

        def apply(carry: Any, inputs: StepInput, _: Any) -> tuple[Any, Any]:
            return apply_network(self.actor, params, inputs, carry)

        batch = data["observation"].shape[0]
        return replay.unroll(
            apply,
            self.actor.initialize_carry(batch),
            data,
            burn_in=self.config.burn_in_length or 0,
            memory=has_memory(self.actor),
            following=following,
        )

    def _critic_unroll(
        self, params: Any, data: dict, action: Any, next_action: Any, *, following: bool
    ) -> tuple[jax.Array, Any]:
        """Both critics' ``Q`` at every step of ``[B, L]`` sequences, from the initial carry:
        ``[B, L, 2]`` scoring ``action`` / ``next_action`` ``[B, L, A]`` (continuous) or
        ``[B, L, 2, n]`` (discrete), at ``observation_t`` and, ``following``, at
        ``final_observation_t`` with the carry right after step ``t``."""

        def apply(carry: Any, inputs: StepInput, scored: Any) -> tuple[Any, jax.Array]:
            return self._critic(params, carry, inputs, scored)

        discrete = self.discrete
        return replay.unroll(
            apply,
            self._critic_carry(data["observation"].shape[0]),
            data,
            burn_in=self.config.burn_in_length or 0,
            memory=has_memory(self.critic),
            following=following,
            scored=None if discrete else action,
            scored_next=None if discrete else next_action,
        )

    def _critic(
        self, params: Any, carry: Any, inputs: StepInput, scored: jax.Array | None
    ) -> tuple[Any, jax.Array]:
        """One critic call on ``[B, T]`` inputs: ``(carry, q)``, ``q`` ``[B, T, 2(, n)]``."""
        head = {} if scored is None else {"action": scored}

        def call(params: Any, carry: Any) -> tuple[Any, jax.Array]:
            return apply_network(self.critic, params, inputs, carry, **head)

        carry, q = call(params, carry) if self.critic_copies == 1 else jax.vmap(call)(params, carry)
        return carry, jnp.moveaxis(q, 0, 2)

    def _critic_carry(self, batch: int) -> Any:
        carry = self.critic.initialize_carry(batch)
        if self.critic_copies == 1:
            return carry
        return jax.tree.map(lambda x: jnp.stack([x, x]), carry)

    def _taken(self, q: jax.Array, action: jax.Array) -> jax.Array:
        """Discrete ``q [..., n]``: the value of ``action`` (broadcast to ``q``'s other
        axes); continuous: ``q`` itself."""
        if not self.discrete:
            return q
        index = jnp.broadcast_to(action, q.shape[:-1])[..., None].astype(jnp.int32)
        return jnp.take_along_axis(q, index, axis=-1)[..., 0]

    def _random_actions(self, key: jax.Array, num_envs: int) -> jax.Array:
        if self.discrete:
            return jax.random.randint(key, (num_envs,), 0, self.action_dim, jnp.int32)
        return jax.random.uniform(key, (num_envs, self.action_dim), jnp.float32, -1.0, 1.0)
