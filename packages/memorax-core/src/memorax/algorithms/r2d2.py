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
- **Value rescaling** (:func:`~memorax.algorithms.returns.value_rescaling`).
  The network outputs ``h(Q)``; the n-step double-Q target is
  ``h(sum_k gamma^k r_{t+k} + gamma^m h^-1(Q_target(o', argmax_a Q_online(o', a))))``,
  bootstrapping truncated episodes from ``final_observation`` and never
  past a termination.
- **Prioritised replay** (:class:`~memorax.buffers.PrioritisedSequenceBuffer`).
  A sequence's priority is ``eta * max_t |td_t| + (1 - eta) * mean_t |td_t|``
  over its learned steps (:func:`sequence_priorities`), written back at the
  sampled starts after every gradient step; the squared TD errors are
  weighted by the buffer's importance weights.

Sequences are ``burn_in_length + sequence_length + n_step - 1`` stored steps.
Each iteration acts epsilon-greedily for ``num_steps`` steps per env copy
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

import jax
import jax.numpy as jnp

from memorax.algorithms import replay
from memorax.algorithms.acting import StepInput, apply_network
from memorax.algorithms.agent import apply_gradients
from memorax.algorithms.checks import (
    BOOL,
    BURN_IN,
    DEVICES,
    DISCOUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    OPTIONAL_POSITIVE,
    POSITIVE_INT,
    SEQUENCE,
    has_memory,
    resolve_replay_sequences,
    setting,
)
from memorax.algorithms.data_parallel import LaidOutByFields, place
from memorax.algorithms.q_learning import QLearningAgent, QReplayState
from memorax.algorithms.returns import inverse_value_rescaling, n_step_q_targets
from memorax.buffers import PrioritisedBufferState, PrioritisedSequenceBuffer, Sample

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
iteration's gradient steps, NaN while learning has not started; the other
keys are as in :data:`~memorax.algorithms.DQN_METRIC_NAMES`.
"""

MIN_PRIORITY = 1e-6
"""Floor on written priorities, so a sequence with zero TD error can still be drawn."""


@dataclasses.dataclass(frozen=True)
class R2D2Config(replay.ReplayConfig):
    """R2D2 hyperparameters; fields shared with :class:`~memorax.algorithms.DQNConfig`
    mean the same there (paper values noted where the defaults differ).

    Attributes:
        batch_size: sequences per gradient step (paper: 64).
        epsilon_start, epsilon_end: the paper gives each distributed actor a
            fixed epsilon; here it decays linearly as in DQN.
        sequence_length: learned steps per sampled sequence (paper: 80); at
            least 2, or the memory learns nothing.
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
        num_devices: as :attr:`memorax.algorithms.DQNConfig.num_devices`; each
            device also keeps its copies' priorities and the sum tree is
            replicated, so each gradient step draws the same ``batch_size``
            sequences as on one device.
    """

    batch_size: int = setting(32, POSITIVE_INT)
    gamma: float = setting(0.997, DISCOUNT)
    n_step: int = setting(5, POSITIVE_INT)
    target_update_interval: int = setting(2_500, POSITIVE_INT)
    epsilon_start: float = setting(1.0, FRACTION)
    epsilon_end: float = setting(0.01, FRACTION)
    epsilon_decay_steps: int = setting(50_000, NON_NEGATIVE_INT)
    max_grad_norm: float | None = setting(40.0, OPTIONAL_POSITIVE)
    sequence_length: int = setting(40, SEQUENCE)
    burn_in_length: int = setting(20, BURN_IN)
    stored_state: bool = setting(True, BOOL)
    value_rescaling: bool = setting(True, BOOL)
    value_rescaling_epsilon: float = setting(1e-3, NON_NEGATIVE)
    priority_exponent: float = setting(0.9, NON_NEGATIVE)
    importance_sampling_exponent: float = setting(0.6, FRACTION)
    priority_eta: float = setting(0.9, FRACTION)
    num_devices: int | None = setting(None, DEVICES)


class R2D2State(QReplayState):
    """Everything that changes during training, as one pytree (vmappable over seeds);
    the fields not described here are as in :class:`~memorax.algorithms.DQNState`.

    Attributes:
        params, target_params: Flax variables of the online and target networks.
        optimizer_state: optax state of the online network's update.
        buffer_state: the :class:`~memorax.buffers.PrioritisedBufferState`;
            its ``experience["carry"]`` holds the stored carries.
    """

    buffer_state: LaidOutByFields[PrioritisedBufferState]


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


class R2D2(QLearningAgent[R2D2Config, R2D2State]):
    """R2D2 for discrete-action envs, JAX-native or callback, with a recurrent Q-network.

    Args:
        config: :class:`R2D2Config`.
        env: a batched env from ``make(...)`` with a ``Discrete`` action space.
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

    config_class = R2D2Config
    state_class = R2D2State
    metric_names = R2D2_METRIC_NAMES

    def _prepare(self) -> None:
        if not has_memory(self.network):
            raise ValueError(
                "R2D2 replays sequences from stored recurrent carries, so the network's torso "
                f"must be a SequenceModel (e.g. memorax.networks.GRU); got "
                f"{type(getattr(self.network, 'torso', None)).__name__}. For a feed-forward "
                "Q-network use DQN."
            )
        config = self.config = resolve_replay_sequences("R2D2", self.config, [self.network])
        self.buffer = PrioritisedSequenceBuffer(
            num_envs=config.num_envs,  # type: ignore[arg-type]
            capacity=config.buffer_size // config.num_envs,  # type: ignore[operator]
            sequence_length=config.stored_sequence_length,
            priority_exponent=config.priority_exponent,
            importance_sampling_exponent=config.importance_sampling_exponent,
        )

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> R2D2State:
        params = self._init_network(self.network, keys[0], acting, acting["carry"])
        example = replay.example_step(acting, "done", "carry", carry=acting["carry"])
        return R2D2State(
            params=params,
            target_params=params,
            optimizer_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(example),
            gradient_steps=jnp.zeros((), jnp.int32),
            **acting,
            **self._counters(),
        )

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

    def _iterate(self, key: jax.Array, state: R2D2State) -> tuple[R2D2State, dict, Any]:
        config = self.config
        act_key, learn_key = jax.random.split(key)
        epsilon = self._epsilon(state)

        # 1. Act, keeping the carry each step was acted on with; 2. store; 3. learn.
        # (h is increasing, so acting and evaluating greedily on h(Q) is greedy on Q.)
        policy = self._epsilon_greedy(state.params, epsilon, keep=("carry",))
        state, rollout = self._rollout(act_key, state, policy)
        record = rollout.replay_record("done", "carry")
        buffer_state = replay.store(self.buffer, state.buffer_state, record, self.data_parallel)
        ready = self.buffer.can_sample(buffer_state) & (state.env_steps >= config.learning_starts)

        def gradient_step(learner: tuple, key: jax.Array) -> tuple[tuple, dict]:
            (params, target_params, opt_state, count), priorities = learner
            # The experience stays out of the loop's carry; only what priority updates
            # change (priorities, sum tree, running maximum) is carried.
            buffer = dataclasses.replace(buffer_state, **priorities)
            # The same global draw as on one device (the sum tree is replicated); each
            # device gathers the sequences of its env copies, then the batch is split.
            sample = self._split(self.buffer.sample(buffer, key, config.batch_size))
            (loss, (q_value, new_priorities)), grads = jax.value_and_grad(self._loss, has_aux=True)(
                params, target_params, sample
            )
            params, opt_state = apply_gradients(self.optimizer, grads, opt_state, params)
            buffer = place(
                self.data_parallel,
                # Gated here, so that learn need not select the whole sum tree.
                self.buffer.update_priorities(buffer, sample.indices, new_priorities, ready),
            )
            target_params = replay.periodic_target_update(
                params, target_params, count + 1, config.target_update_interval, 1.0
            )
            learner = ((params, target_params, opt_state, count + 1), _priorities(buffer))
            return learner, {"loss": loss, "q_value": q_value, "priority": jnp.mean(new_priorities)}

        learner = (
            (state.params, state.target_params, state.optimizer_state, state.gradient_steps),
            _priorities(buffer_state),
        )
        learner, stats = replay.learn(
            learn_key, learner, gradient_step, config.gradient_steps, ready, self_gated=True
        )
        (params, target_params, opt_state, gradient_steps), priorities = learner
        state = state.replace(
            params=params,
            target_params=target_params,
            optimizer_state=opt_state,
            buffer_state=dataclasses.replace(buffer_state, **priorities),
            gradient_steps=gradient_steps,
        )
        metrics = {**stats, "epsilon": epsilon, "gradient_steps": gradient_steps}
        return state, metrics, rollout.episode

    def _loss(self, params: Any, target_params: Any, sample: Sample) -> tuple:
        """Importance-weighted ``0.5 * mean (h(Q(o, a)) - target)^2``; aux: mean Q
        (unrescaled) and the sequences' new priorities ``[B]``."""
        q_taken, targets = self._q_and_targets(params, target_params, sample.experience)
        td = q_taken - targets
        loss = 0.5 * jnp.mean(sample.weights[:, None] * jnp.square(td))
        eta = self.config.priority_eta
        priorities = sequence_priorities(jax.lax.stop_gradient(jnp.abs(td)), eta)
        return loss, (jnp.mean(self._unrescaled(q_taken)), jnp.maximum(priorities, MIN_PRIORITY))

    def _q_and_targets(
        self, params: Any, target_params: Any, experience: dict[str, Any]
    ) -> tuple[jax.Array, jax.Array]:
        """``h(Q(o_t, a_t))`` and its n-step double-Q target, both ``[B, sequence_length]``."""
        config = self.config
        if config.stored_state:
            start_carry = jax.tree.map(lambda c: c[:, 0], experience["carry"])
        else:
            start_carry = self.network.initialize_carry(experience["observation"].shape[0])
        steps = {name: value for name, value in experience.items() if name != "carry"}

        def run(variables: Any) -> tuple[jax.Array, jax.Array]:
            def apply(carry: Any, inputs: StepInput, _: Any) -> tuple[Any, jax.Array]:
                return apply_network(self.network, variables, inputs, carry)

            return replay.unroll(apply, start_carry, steps, burn_in=config.burn_in_length)

        q, online_next = run(params)
        _, target_next = run(target_params)
        rescaling = config.value_rescaling_epsilon if config.value_rescaling else None
        return n_step_q_targets(
            q,
            online_next,
            target_next,
            steps,
            burn_in=config.burn_in_length,
            length=config.sequence_length,
            gamma=config.gamma,
            n_step=config.n_step,
            rescaling_epsilon=rescaling,
        )

    def _unrescaled(self, values: jax.Array) -> jax.Array:
        """Network outputs in return units (``h^-1`` when value rescaling is on)."""
        if not self.config.value_rescaling:
            return values
        return inverse_value_rescaling(values, self.config.value_rescaling_epsilon)


def _priorities(buffer_state: PrioritisedBufferState) -> dict[str, Any]:
    """The fields of a buffer state that priority updates change."""
    return {name: getattr(buffer_state, name) for name in ("priorities", "tree", "max_priority")}
