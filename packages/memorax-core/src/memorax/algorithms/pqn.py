"""Parallelised Q-learning, PQN (Gallici et al., 2024), with or without memory.

No replay buffer and no target network: many env copies act epsilon-greedily
with the current network, each rollout gets Peng's Q(lambda) targets
(:func:`~memorax.algorithms.returns.q_lambda_returns`, scanned backwards) from
the same network, then epochs of minibatches regress ``Q(o_t, a_t)`` onto
them, as :mod:`memorax.algorithms.ppo` does for its losses. Recurrent agents
train on whole env sequences from the carries stored at the start of the
rollout, their first ``burn_in_length`` steps only refreshing them.

PQN relies on normalisation in the network to stay stable without a target
network; the paper puts a ``LayerNorm`` after every hidden layer. That is
the torso's job here (e.g. a small Dense -> LayerNorm -> ReLU module as the
torso), so the choice stays the user's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from memorax.algorithms.acting import EvaluationResult
from memorax.algorithms.agent import apply_gradients
from memorax.algorithms.checks import (
    DEVICES,
    DISCOUNT,
    FRACTION,
    NON_NEGATIVE_INT,
    OPTIONAL_POSITIVE,
    POSITIVE_INT,
    AgentConfig,
    check_minibatches,
    has_memory,
    setting,
)
from memorax.algorithms.data_parallel import OnEnvAxis
from memorax.algorithms.on_policy import bootstrap_outputs, loss_steps, run_epochs, sequence_apply
from memorax.algorithms.q_learning import QLearningAgent
from memorax.algorithms.returns import q_lambda_returns

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
class PQNConfig(AgentConfig):
    """PQN hyperparameters.

    Attributes:
        num_envs: env copies stepped together; ``None`` (default) takes the
            env's ``num_envs``, a number must equal it.
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

    num_steps: int = setting(64, POSITIVE_INT)
    gamma: float = setting(0.99, DISCOUNT)
    q_lambda: float = setting(0.65, FRACTION)
    num_minibatches: int = setting(4, POSITIVE_INT)
    update_epochs: int = setting(4, POSITIVE_INT)
    epsilon_start: float = setting(1.0, FRACTION)
    epsilon_end: float = setting(0.05, FRACTION)
    epsilon_decay_steps: int = setting(100_000, NON_NEGATIVE_INT)
    max_grad_norm: float | None = setting(10.0, OPTIONAL_POSITIVE)
    burn_in_length: int = setting(0, NON_NEGATIVE_INT)
    num_devices: int | None = setting(None, DEVICES)

    def check(self) -> None:
        """The burn-in leaves steps to learn from; the rollout splits into minibatches."""
        check_minibatches(self)

    @property
    def steps_per_update(self) -> int:
        """Env steps (all copies) collected per update: ``num_envs * num_steps``."""
        return self.steps_per_iteration


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
    env_state: OnEnvAxis[Any]
    observation: OnEnvAxis[jax.Array]
    episode_start: OnEnvAxis[jax.Array]
    previous_action: OnEnvAxis[jax.Array]
    previous_reward: OnEnvAxis[jax.Array]
    carry: OnEnvAxis[Any]
    env_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult


class PQN(QLearningAgent[PQNConfig, PQNState]):
    """PQN for discrete-action envs, JAX-native or callback.

    Args:
        config: :class:`PQNConfig`.
        env: a batched env from ``make(...)`` with a ``Discrete`` action space.
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

    config_class = PQNConfig
    state_class = PQNState
    metric_names = PQN_METRIC_NAMES
    iteration_unit = "update"

    def _prepare(self) -> None:
        config = self.config
        self.recurrent = has_memory(self.network)
        if self.recurrent and config.num_envs % config.num_minibatches:  # type: ignore[operator]
            raise ValueError(
                f"PQN: a recurrent agent trains on whole env sequences, so num_envs="
                f"{config.num_envs} must be divisible by num_minibatches={config.num_minibatches}."
            )
        if config.burn_in_length and not self.recurrent:
            raise ValueError(
                "PQN: burn_in_length > 0 needs a recurrent (SequenceModel) torso; feed-forward "
                "agents have no carry to burn in. Set burn_in_length=0."
            )

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> PQNState:
        params = self._init_network(self.network, keys[0], acting, acting["carry"])
        return PQNState(
            params=params, optimizer_state=self.optimizer.init(params), **acting, **self._counters()
        )

    def _iterate(self, key: jax.Array, state: PQNState) -> tuple[PQNState, dict, Any]:
        config = self.config
        rollout_key, epochs_key = jax.random.split(key)
        start_carry = state.carry
        epsilon = self._epsilon(state)

        # 1. Rollout: act epsilon-greedily, keeping Q of the action and the carry after.
        policy = self._epsilon_greedy(state.params, epsilon, keep=("q_value", "carry_after"))
        state, rollout = self._rollout(rollout_key, state, policy)

        # 2. Bootstrap max_a Q(final_observation_t, a) from the carry after step t;
        # Q(lambda) targets.
        next_q = bootstrap_outputs(
            self.network, state.params, rollout, rollout.extras["carry_after"]
        )
        bootstrap = jnp.max(next_q[:, 0], axis=-1).reshape(rollout.reward.shape)
        targets = q_lambda_returns(
            rollout.reward,
            bootstrap,
            rollout.terminated,
            rollout.done,
            config.gamma,
            config.q_lambda,
        )
        batch = (rollout.inputs, rollout.action, targets)
        batch = jax.tree.map(lambda x: self._split(jnp.swapaxes(x, 0, 1)), batch)

        # 3. Update epochs over minibatches.
        (params, opt_state), stats = run_epochs(
            epochs_key,
            (state.params, state.optimizer_state),
            batch,
            start_carry,
            self._minibatch_step,
            num_epochs=config.update_epochs,
            num_minibatches=config.num_minibatches,
            recurrent=self.recurrent,
            split=self._split,
        )
        state = state.replace(params=params, optimizer_state=opt_state)
        metrics = {**stats, "q_value": jnp.mean(rollout.extras["q_value"]), "epsilon": epsilon}
        return state, metrics, rollout.episode

    def _minibatch_step(self, learner: tuple, minibatch: tuple) -> tuple[tuple, dict]:
        params, opt_state = learner
        data, carry = minibatch
        loss, grads = jax.value_and_grad(self._loss)(params, data, carry)
        params, opt_state = apply_gradients(self.optimizer, grads, opt_state, params)
        return (params, opt_state), {"loss": loss}

    def _loss(self, params: Any, data: tuple, carry: Any) -> jax.Array:
        """``0.5 * mean (Q(o_t, a_t) - G_t)^2`` over the non-burn-in steps."""
        burn_in = self.config.burn_in_length
        inputs, action, target = data
        q = sequence_apply(self.network, params, inputs, carry, burn_in)
        action, target = loss_steps((action, target), burn_in)
        q_taken = jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0]
        return 0.5 * jnp.mean(jnp.square(q_taken - target))
