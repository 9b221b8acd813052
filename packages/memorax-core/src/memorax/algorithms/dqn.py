"""Deep Q-networks (Mnih et al., 2015) with double Q, dueling heads, n-step returns and memory.

Each iteration, read top to bottom in :meth:`DQN._iterate`: every env copy
acts epsilon-greedily for ``num_steps`` steps (scanned), the steps go to a
:class:`~memorax.buffers.SequenceBuffer`, then ``gradient_steps`` updates
each regress ``Q(o_t, a_t)`` of sampled sequences onto n-step targets
(:func:`~memorax.algorithms.returns.n_step_q_targets`) from a target
network, copied from the online network every ``target_update_interval``
gradient steps.

Sequences are ``burn_in_length + sequence_length + n_step - 1`` stored steps.
Both networks run over them from their initial carry (reset wherever an
episode starts); the burn-in prefix only warms up the carry (R2D2's
"burn-in" with a zero start state: no gradient flows into it), the next
``sequence_length`` steps are learned from, and the last ``n_step - 1`` steps
only supply rewards and bootstraps. A feed-forward agent learns from single
steps (``sequence_length=1, burn_in_length=0``); with a memory torso the
defaults are 20 learned steps after 10 of burn-in, and ``sequence_length=1``
is refused (it would train no memory).

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

import jax
import jax.numpy as jnp

from memorax.algorithms import replay
from memorax.algorithms.acting import StepInput, apply_network
from memorax.algorithms.agent import apply_gradients
from memorax.algorithms.checks import (
    BOOL,
    BURN_IN,
    DEVICES,
    FRACTION,
    NON_NEGATIVE_INT,
    OPTIONAL_POSITIVE,
    POSITIVE_INT,
    SEQUENCE,
    has_memory,
    resolve_replay_sequences,
    setting,
)
from memorax.algorithms.q_learning import QLearningAgent, QReplayState
from memorax.algorithms.returns import n_step_q_targets

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
class DQNConfig(replay.ReplayConfig):
    """DQN hyperparameters (the first seven as :class:`~memorax.algorithms.replay.ReplayConfig`).

    Attributes:
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
            torso (:data:`~memorax.algorithms.checks.MEMORY_SEQUENCE_LENGTH`);
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

    n_step: int = setting(1, POSITIVE_INT)
    double_q: bool = setting(True, BOOL)
    target_update_interval: int = setting(500, POSITIVE_INT)
    epsilon_start: float = setting(1.0, FRACTION)
    epsilon_end: float = setting(0.05, FRACTION)
    epsilon_decay_steps: int = setting(50_000, NON_NEGATIVE_INT)
    max_grad_norm: float | None = setting(10.0, OPTIONAL_POSITIVE)
    sequence_length: int | None = setting(None, SEQUENCE)
    burn_in_length: int | None = setting(None, BURN_IN)
    num_devices: int | None = setting(None, DEVICES)


class DQNState(QReplayState):
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


class DQN(QLearningAgent[DQNConfig, DQNState]):
    """DQN for discrete-action envs, JAX-native or callback.

    Args:
        config: :class:`DQNConfig`.
        env: a batched env from ``make(...)`` with a ``Discrete`` action space.
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

    config_class = DQNConfig
    state_class = DQNState
    metric_names = DQN_METRIC_NAMES

    def _prepare(self) -> None:
        self.config = resolve_replay_sequences("DQN", self.config, [self.network])
        self.buffer = self.config.sequence_buffer()

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> DQNState:
        params = self._init_network(self.network, keys[0], acting, acting["carry"])
        return DQNState(
            params=params,
            target_params=params,
            optimizer_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(replay.example_step(acting, "done")),
            gradient_steps=jnp.zeros((), jnp.int32),
            **acting,
            **self._counters(),
        )

    def _iterate(self, key: jax.Array, state: DQNState) -> tuple[DQNState, dict, Any]:
        config = self.config
        rollout_key, learn_key = jax.random.split(key)
        epsilon = self._epsilon(state)

        # 1. Act epsilon-greedily; 2. store the steps; 3. learn once replay allows.
        policy = self._epsilon_greedy(state.params, epsilon)
        state, rollout = self._rollout(rollout_key, state, policy)
        buffer_state = replay.store(
            self.buffer, state.buffer_state, rollout.replay_record("done"), self.data_parallel
        )
        ready = self.buffer.can_sample(buffer_state) & (state.env_steps >= config.learning_starts)

        def gradient_step(learner: tuple, key: jax.Array) -> tuple[tuple, dict]:
            params, target_params, opt_state, count = learner
            # The same global sample as on one device; each device gathers the
            # sequences of its env copies, then the batch is split over devices.
            sample = self.buffer.sample(buffer_state, key, config.batch_size)
            (loss, q_value), grads = jax.value_and_grad(self._loss, has_aux=True)(
                params, target_params, self._split(sample.experience)
            )
            params, opt_state = apply_gradients(self.optimizer, grads, opt_state, params)
            target_params = replay.periodic_target_update(
                params, target_params, count + 1, config.target_update_interval, 1.0
            )
            return (params, target_params, opt_state, count + 1), {"loss": loss, "q_value": q_value}

        learner = (state.params, state.target_params, state.optimizer_state, state.gradient_steps)
        learner, stats = replay.learn(
            learn_key, learner, gradient_step, config.gradient_steps, ready
        )
        params, target_params, opt_state, gradient_steps = learner
        state = state.replace(
            params=params,
            target_params=target_params,
            optimizer_state=opt_state,
            buffer_state=buffer_state,
            gradient_steps=gradient_steps,
        )
        metrics = {**stats, "epsilon": epsilon, "gradient_steps": gradient_steps}
        return state, metrics, rollout.episode

    def _loss(self, params: Any, target_params: Any, data: dict[str, jax.Array]) -> tuple:
        """``0.5 * mean (Q(o_t, a_t) - G_t)^2`` over the learned steps, and mean ``Q(o_t, a_t)``."""
        config = self.config
        q, online_next = self._unroll(params, data)
        _, target_next = self._unroll(target_params, data)
        q_taken, targets = n_step_q_targets(
            q,
            online_next,
            target_next,
            data,
            burn_in=config.burn_in_length or 0,
            length=config.sequence_length or 1,
            gamma=config.gamma,
            n_step=config.n_step,
            double_q=config.double_q,
        )
        return 0.5 * jnp.mean(jnp.square(q_taken - targets)), jnp.mean(q_taken)

    def _unroll(self, params: Any, data: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """``Q(observation_t)`` and ``Q(final_observation_t)``, ``[B, L, n]``, from the
        initial carry."""

        def apply(carry: Any, inputs: StepInput, _: Any) -> tuple[Any, jax.Array]:
            return apply_network(self.network, params, inputs, carry)

        batch = data["observation"].shape[0]
        return replay.unroll(
            apply,
            self.network.initialize_carry(batch),
            data,
            burn_in=self.config.burn_in_length,  # type: ignore[arg-type]
            memory=has_memory(self.network),
        )
