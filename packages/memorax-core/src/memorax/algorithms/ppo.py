"""Proximal policy optimisation (Schulman et al., 2017) for agents with or without memory.

Each training iteration, read top to bottom in :meth:`PPO._iterate`: collect
a rollout with the actor's samples (scanned over time), bootstrap values and
advantages (:func:`~memorax.algorithms.returns.generalized_advantage_estimation`,
scanned backwards), then update epochs of minibatches (scanned). Recurrent
agents train on whole env sequences that start from the carries stored at the
start of the rollout; feed-forward agents shuffle single transitions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from memorax.algorithms.acting import EvaluationResult, StepInput, apply_network
from memorax.algorithms.agent import Agent, apply_gradients, with_gradient_clipping
from memorax.algorithms.checks import (
    BOOL,
    DEVICES,
    DISCOUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    OPTIONAL_POSITIVE,
    POSITIVE,
    POSITIVE_INT,
    AgentConfig,
    check_minibatches,
    check_policy_head,
    has_memory,
    setting,
)
from memorax.algorithms.data_parallel import OnEnvAxis
from memorax.algorithms.metrics import MetricsCallback
from memorax.algorithms.on_policy import bootstrap_outputs, loss_steps, run_epochs, sequence_apply
from memorax.algorithms.returns import generalized_advantage_estimation
from memorax.envs import Environment

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
class PPOConfig(AgentConfig):
    """PPO hyperparameters.

    Attributes:
        num_envs: env copies stepped together; ``None`` (default) takes the
            env's ``num_envs``, a number must equal it.
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

    num_steps: int = setting(128, POSITIVE_INT)
    gamma: float = setting(0.99, DISCOUNT)
    gae_lambda: float = setting(0.95, FRACTION)
    num_minibatches: int = setting(4, POSITIVE_INT)
    update_epochs: int = setting(4, POSITIVE_INT)
    normalize_advantage: bool = setting(True, BOOL)
    clip_coefficient: float = setting(0.2, POSITIVE)
    clip_value_loss: bool = setting(True, BOOL)
    entropy_coefficient: float = setting(0.01, NON_NEGATIVE)
    value_coefficient: float = setting(0.5, NON_NEGATIVE)
    max_grad_norm: float | None = setting(0.5, OPTIONAL_POSITIVE)
    target_kl: float | None = setting(None, OPTIONAL_POSITIVE)
    burn_in_length: int = setting(0, NON_NEGATIVE_INT)
    num_devices: int | None = setting(None, DEVICES)

    def check(self) -> None:
        """The burn-in leaves steps to learn from; the rollout splits into minibatches."""
        check_minibatches(self)

    @property
    def steps_per_update(self) -> int:
        """Env steps (all copies) collected per update: ``num_envs * num_steps``."""
        return self.steps_per_iteration


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
    env_state: OnEnvAxis[Any]
    observation: OnEnvAxis[jax.Array]
    episode_start: OnEnvAxis[jax.Array]
    previous_action: OnEnvAxis[jax.Array]
    previous_reward: OnEnvAxis[jax.Array]
    actor_carry: OnEnvAxis[Any]
    critic_carry: OnEnvAxis[Any]
    env_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


class _Batch(struct.PyTreeNode):
    """Training data, batch-major ``[num_envs, num_steps, ...]`` (or flattened)."""

    inputs: StepInput
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class PPO(Agent[PPOConfig, PPOState]):
    """PPO with separate actor and critic networks, for JAX-native and callback envs.

    Args:
        config: :class:`PPOConfig`.
        env: a batched env from ``make(...)`` with a ``Discrete`` or ``Box``
            action space.
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

    config_class = PPOConfig
    state_class = PPOState
    metric_names = METRIC_NAMES
    iteration_unit = "update"

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
        super().__init__(
            config,
            env,
            env_params,
            networks={"actor": actor, "critic": critic},
            optimizers={"actor_optimizer": actor_optimizer, "critic_optimizer": critic_optimizer},
            metrics_callback=metrics_callback,
        )
        check_policy_head("PPO", env, actor)
        self.actor, self.critic = actor, critic
        self.carry_networks = {"actor_carry": actor, "critic_carry": critic}
        self.policy_network = actor
        max_norm = self.config.max_grad_norm
        self.actor_optimizer = with_gradient_clipping(actor_optimizer, max_norm)
        self.critic_optimizer = with_gradient_clipping(critic_optimizer, max_norm)
        self.recurrent = has_memory(actor) or has_memory(critic)
        if self.recurrent and self.config.num_envs % self.config.num_minibatches:  # type: ignore[operator]
            raise ValueError(
                f"PPO: a recurrent agent trains on whole env sequences, so num_envs="
                f"{self.config.num_envs} must be divisible by num_minibatches="
                f"{self.config.num_minibatches}."
            )
        if self.config.burn_in_length and not self.recurrent:
            raise ValueError(
                "PPO: burn_in_length > 0 needs a recurrent (SequenceModel) torso; feed-forward "
                "agents have no carry to burn in. Set burn_in_length=0."
            )

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> PPOState:
        actor_key, critic_key = keys
        actor_params = self._init_network(self.actor, actor_key, acting, acting["actor_carry"])
        critic_params = self._init_network(self.critic, critic_key, acting, acting["critic_carry"])
        return PPOState(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_optimizer_state=self.actor_optimizer.init(actor_params),
            critic_optimizer_state=self.critic_optimizer.init(critic_params),
            **acting,
            **self._counters(),
        )

    def _policy_params(self, state: PPOState) -> Any:
        return state.actor_params

    def _greedy_action(self, output: Any) -> jax.Array:
        return output.mode()[:, 0]

    def _iterate(self, key: jax.Array, state: PPOState) -> tuple[PPOState, dict, Any]:
        config = self.config
        rollout_key, epochs_key = jax.random.split(key)
        start_carries = (state.actor_carry, state.critic_carry)

        # 1. Rollout: act with samples of the policy, keeping log-probs and values.
        def policy(key: jax.Array, inputs: StepInput, carries: tuple) -> tuple:
            steps = inputs.with_time_axis()
            actor_carry, distribution = apply_network(
                self.actor, state.actor_params, steps, carries[0]
            )
            critic_carry, value = apply_network(self.critic, state.critic_params, steps, carries[1])
            action = distribution.sample(key)
            extras = {
                "log_prob": distribution.log_prob(action)[:, 0],
                "value": value[:, 0],
                "critic_carry": critic_carry,
            }
            return (actor_carry, critic_carry), action[:, 0], extras

        state, rollout = self._rollout(rollout_key, state, policy)
        values = rollout.extras["value"]

        # 2. Bootstrap V(final_observation_t) from the critic carry after step t; GAE.
        bootstrap = bootstrap_outputs(
            self.critic, state.critic_params, rollout, rollout.extras["critic_carry"]
        )
        advantages, targets = generalized_advantage_estimation(
            rollout.reward,
            values,
            bootstrap.reshape(values.shape),
            rollout.terminated,
            rollout.done,
            config.gamma,
            config.gae_lambda,
        )
        batch = _Batch(
            rollout.inputs, rollout.action, rollout.extras["log_prob"], values, advantages, targets
        )
        batch = jax.tree.map(lambda x: self._split(jnp.swapaxes(x, 0, 1)), batch)

        # 3. Update epochs over minibatches (skipped once an epoch exceeds target_kl).
        stop = None
        if config.target_kl is not None:
            stop = lambda stats: stats["approx_kl"] > config.target_kl  # noqa: E731
        learner = (
            (state.actor_params, state.critic_params),
            (state.actor_optimizer_state, state.critic_optimizer_state),
        )
        (params, opt_states), stats = run_epochs(
            epochs_key,
            learner,
            batch,
            start_carries,
            self._minibatch_step,
            num_epochs=config.update_epochs,
            num_minibatches=config.num_minibatches,
            recurrent=self.recurrent,
            split=self._split,
            stop=stop,
        )
        state = state.replace(
            actor_params=params[0],
            critic_params=params[1],
            actor_optimizer_state=opt_states[0],
            critic_optimizer_state=opt_states[1],
        )
        return (
            state,
            {**stats, "explained_variance": _explained_variance(values, targets)},
            (rollout.episode),
        )

    def _minibatch_step(self, learner: tuple, minibatch: tuple) -> tuple[tuple, dict]:
        (actor_params, critic_params), (actor_opt, critic_opt) = learner
        data, carries = minibatch
        actor_carry, critic_carry = (None, None) if carries is None else carries

        # One backward pass for both networks: their losses share no parameters.
        def loss(params: tuple[Any, Any]) -> tuple[jax.Array, tuple]:
            actor_loss, actor_stats = self._actor_loss(params[0], data, actor_carry)
            critic_loss, value_loss = self._critic_loss(params[1], data, critic_carry)
            return actor_loss + critic_loss, (actor_stats, value_loss)

        (actor_grads, critic_grads), (actor_stats, value_loss) = jax.grad(loss, has_aux=True)(
            (actor_params, critic_params)
        )
        actor_params, actor_opt = apply_gradients(
            self.actor_optimizer, actor_grads, actor_opt, actor_params
        )
        critic_params, critic_opt = apply_gradients(
            self.critic_optimizer, critic_grads, critic_opt, critic_params
        )
        learner = ((actor_params, critic_params), (actor_opt, critic_opt))
        return learner, {**actor_stats, "value_loss": value_loss}

    def _actor_loss(self, params: Any, data: _Batch, carry: Any) -> tuple[jax.Array, dict]:
        config = self.config
        burn_in = config.burn_in_length
        policy = sequence_apply(self.actor, params, data.inputs, carry, burn_in)
        data = loss_steps(data, burn_in)
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

    def _critic_loss(self, params: Any, data: _Batch, carry: Any) -> tuple[jax.Array, jax.Array]:
        config = self.config
        burn_in = config.burn_in_length
        value = sequence_apply(self.critic, params, data.inputs, carry, burn_in)
        data = loss_steps(data, burn_in)
        value_loss = jnp.square(value - data.target)
        if config.clip_value_loss:
            clipped = data.value + jnp.clip(
                value - data.value, -config.clip_coefficient, config.clip_coefficient
            )
            value_loss = jnp.maximum(value_loss, jnp.square(clipped - data.target))
        value_loss = 0.5 * jnp.mean(value_loss)
        return config.value_coefficient * value_loss, value_loss


def _explained_variance(values: jax.Array, targets: jax.Array) -> jax.Array:
    variance = jnp.var(targets)
    return jnp.where(variance > 0, 1.0 - jnp.var(targets - values) / variance, jnp.nan)
