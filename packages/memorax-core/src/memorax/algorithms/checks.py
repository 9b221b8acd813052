"""Checks of what a user passes to an agent: clear errors before anything runs.

Configs declare their rules next to their fields (:func:`setting`); one
checker, :class:`AgentConfig`, enforces them when a config is built and again
when the agent fills in what the config left open (``num_envs`` from the env,
sequence lengths from the networks). The constructor and method checks every
agent shares live here too, so each says the same thing the same way:
``owner`` prefixes a message (``"SACConfig"``, ``"SAC.train"``) so the user
knows where to look.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import flax.linen as nn
import jax
import numpy as np
import optax

from memorax.envs import Box, Discrete, Environment
from memorax.networks import (
    Categorical,
    ContinuousQNetwork,
    DiscreteQNetwork,
    Gaussian,
    SquashedGaussian,
    TwinContinuousQNetwork,
    is_sequence_model,
)

__all__ = [
    "MEMORY_BURN_IN_LENGTH",
    "MEMORY_SEQUENCE_LENGTH",
    "AgentConfig",
    "Rule",
    "box_action_dim",
    "check_actor_critic_heads",
    "check_agent_arguments",
    "check_discrete_q_network",
    "check_evaluate_arguments",
    "check_evaluation_env",
    "check_policy_head",
    "has_memory",
    "is_int",
    "is_number",
    "num_iterations",
    "resolve_replay_sequences",
    "setting",
]

ConfigT = TypeVar("ConfigT", bound="AgentConfig")

MEMORY_SEQUENCE_LENGTH = 20
"""Learned steps per replayed sequence when a replay agent has a memory torso and the
config leaves ``sequence_length`` unset (R2D2 uses 80 on Atari; 20 learns the memory
tasks here at a quarter of the cost)."""

MEMORY_BURN_IN_LENGTH = 10
"""Steps before them that only warm up the carry, for the same agents (R2D2: 40)."""


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers, False for bools."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for Python and NumPy ints and floats, False for bools."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a config field accepts: ``kind(value)`` and ``low <= value <= high``.

    Attributes:
        kind: ``is_int``, ``is_number`` or ``bool``'s check.
        low, high: bounds (``None``: unbounded).
        what: completes "must be ..." in the message.
        open_low: the value must be strictly above ``low`` (e.g. ``gamma`` in ``(0, 1]``).
        optional: ``None`` is accepted too.
        hint: appended to the message (e.g. what ``None`` means).
    """

    kind: Callable[[Any], bool]
    low: float | None
    high: float | None
    what: str
    open_low: bool = False
    optional: bool = False
    hint: str = ""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` obeys the rule."""
        if value is None:
            return self.optional
        if not self.kind(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high


POSITIVE_INT = Rule(is_int, 1, None, "a positive integer")
NON_NEGATIVE_INT = Rule(is_int, 0, None, "a non-negative integer")
DISCOUNT = Rule(is_number, 0.0, 1.0, "in (0, 1]", open_low=True)
FRACTION = Rule(is_number, 0.0, 1.0, "in [0, 1]")
POSITIVE = Rule(is_number, 0.0, None, "a positive number", open_low=True)
NON_NEGATIVE = Rule(is_number, 0.0, None, "a non-negative number")
OPTIONAL_POSITIVE = Rule(is_number, 0.0, None, "a positive number or None", True, True)
BOOL = Rule(lambda value: isinstance(value, bool), None, None, "a bool")
FINITE = Rule(
    lambda value: is_number(value) and math.isfinite(value),
    None,
    None,
    "a finite number or None (the default for the action space)",
    optional=True,
)
# Set by the agent when left as None: num_envs from the env, sequence lengths from its networks.
ENV_COPIES = Rule(is_int, 1, None, "a positive integer", optional=True)
DEVICES = Rule(is_int, 1, None, "a positive integer or None", optional=True)
SEQUENCE = Rule(
    is_int,
    1,
    None,
    "a positive integer",
    optional=True,
    hint=" (or None: the agent's default for its networks)",
)
BURN_IN = Rule(
    is_int,
    0,
    None,
    "a non-negative integer",
    optional=True,
    hint=" (or None: the agent's default for its networks)",
)


def setting(default: Any, rule: Rule) -> Any:
    """A config field with ``default`` that :class:`AgentConfig` checks against ``rule``."""
    return dataclasses.field(default=default, metadata={"rule": rule})


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Base of the agents' frozen configs: every field declared with :func:`setting` is
    checked on construction, then :meth:`check` runs the rules between fields.

    Attributes:
        num_envs: env copies stepped together. ``None`` (default): the env's
            ``num_envs``, filled in by the agent; a number must equal it.
        check_finite: stop training with
            :class:`~memorax.algorithms.NonFiniteError` at the first update that
            makes a parameter NaN or infinite (default True; tested on the
            device, see :mod:`memorax.algorithms.non_finite`). False trains on.
    """

    num_envs: int | None = setting(None, ENV_COPIES)
    check_finite: bool = setting(True, BOOL)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        traced = False
        for field in dataclasses.fields(self):
            rule = field.metadata.get("rule")
            value = getattr(self, field.name)
            if isinstance(value, jax.core.Tracer):
                # A swept hyperparameter inside a sweep's program: every concrete
                # value was checked when the sweep was built (memorax.algorithms.sweep).
                traced = True
                continue
            if rule is not None and not rule.accepts(value):
                raise ValueError(
                    f"{owner}: {field.name} must be {rule.what}, got {value!r}{rule.hint}."
                )
        if not traced:
            self.check()
        if self.num_envs is not None and getattr(self, "num_devices", None) is not None:
            devices = self.num_devices  # type: ignore[attr-defined]
            if self.num_envs % devices:
                raise ValueError(
                    f"{owner}: num_envs={self.num_envs} env copies cannot be split evenly over "
                    f"num_devices={devices} devices; choose num_envs a multiple of "
                    "num_devices (or num_devices dividing num_envs)."
                )

    def check(self) -> None:
        """Rules between fields; ``ValueError`` naming the fields. Subclasses extend it."""

    @property
    def steps_per_iteration(self) -> int:
        """Env steps (all copies) per training iteration: ``num_envs * num_steps``."""
        if self.num_envs is None:
            raise ValueError(
                f"{type(self).__name__}.num_envs is None until an agent takes it from its env; "
                "read agent.config."
            )
        return self.num_envs * self.num_steps  # type: ignore[attr-defined]

    def for_env(self: ConfigT, agent: str, env: Environment) -> ConfigT:
        """This config with ``num_envs`` from ``env`` (checked again), or a clear error
        when the config names a different number."""
        if self.num_envs is not None and self.num_envs != env.num_envs:
            raise ValueError(
                f"{agent}: config.num_envs={self.num_envs} but {env.name} steps "
                f"{env.num_envs} copies; pass the same number to make(..., num_envs=...) "
                f"and {type(self).__name__}(num_envs=...), or leave the config's None."
            )
        if self.num_envs == env.num_envs:
            return self
        return dataclasses.replace(self, num_envs=env.num_envs)


def check_replay_capacity(config: Any, terms: str) -> None:
    """Raise unless ``config.buffer_size`` splits evenly over the env copies and each copy
    holds one sampled sequence of ``config.stored_sequence_length`` steps (``terms``:
    how that length is made up, for the message)."""
    owner = type(config).__name__
    if config.num_envs is None:
        return
    per_copy, remainder = divmod(config.buffer_size, config.num_envs)
    if remainder:
        raise ValueError(
            f"{owner}: buffer_size={config.buffer_size} must be a multiple of num_envs="
            f"{config.num_envs}, so every env copy keeps the same number of steps."
        )
    if per_copy < config.stored_sequence_length:
        raise ValueError(
            f"{owner}: each env copy keeps buffer_size / num_envs = {per_copy} steps, fewer "
            f"than one sampled sequence ({terms} = {config.stored_sequence_length} steps): the "
            "buffer per env copy cannot hold one sampled sequence; raise buffer_size or "
            "shorten the sequences."
        )
    devices = getattr(config, "num_devices", None)
    if devices is not None and config.batch_size % devices:
        raise ValueError(
            f"{owner}: batch_size={config.batch_size} sampled sequences cannot be split evenly "
            f"over num_devices={devices} devices; choose batch_size a multiple of num_devices."
        )


def check_minibatches(config: Any) -> None:
    """Raise unless an on-policy rollout splits into ``num_minibatches`` and leaves steps
    after the burn-in."""
    owner = type(config).__name__
    if config.burn_in_length >= config.num_steps:
        raise ValueError(
            f"{owner}: burn_in_length={config.burn_in_length} must be smaller than "
            f"num_steps={config.num_steps}, or no step of a sequence is left to learn from."
        )
    if config.num_envs is not None and config.steps_per_iteration % config.num_minibatches:
        raise ValueError(
            f"{owner}: num_envs * num_steps = {config.steps_per_iteration} transitions cannot "
            f"be split into num_minibatches={config.num_minibatches} equal minibatches; "
            "choose num_minibatches dividing it."
        )


# ---------------------------------------------------------------- constructor arguments


def check_agent_arguments(
    agent: str,
    config: Any,
    config_class: type[Any],
    env: Any,
    *,
    networks: Mapping[str, Any],
    optimizers: Mapping[str, Any],
) -> None:
    """Raise ``TypeError`` unless config, env, networks and optimizers have the right types.

    Args:
        agent: the agent's name, for messages (``"PPO"``).
        config: must be a ``config_class``.
        config_class: the agent's config dataclass.
        env: must be a memorax ``Environment``.
        networks: ``{"actor": actor, ...}``: each a ``memorax.networks.Network``.
        optimizers: ``{"actor_optimizer": ..., ...}``: each an optax ``GradientTransformation``.
    """
    name = config_class.__name__
    if not isinstance(config, config_class):
        raise TypeError(
            f"{agent}: config must be {_article(name)} {name}, got {type(config).__name__}."
        )
    if not isinstance(env, Environment):
        raise TypeError(
            f"{agent}: env must be a memorax Environment (from memorax.envs.make), got "
            f"{type(env).__name__}."
        )
    for role, network in networks.items():
        if not isinstance(network, nn.Module) or not hasattr(network, "initialize_carry"):
            raise TypeError(
                f"{agent}: {role} must be a memorax.networks.Network, got {type(network).__name__}."
            )
    for role, optimizer in optimizers.items():
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"{agent}: {role} must be an optax GradientTransformation "
                f"(e.g. optax.adam(3e-4)), got {type(optimizer).__name__}."
            )


def _article(word: str) -> str:
    # Letters whose spoken name starts with a vowel sound: "an R2D2Config", "an SACConfig".
    return "an" if word[:1] in "AEFHILMNORSX" else "a"


def has_memory(network: nn.Module) -> bool:
    """True when ``network``'s torso is a sequence model (it has a carry)."""
    return is_sequence_model(getattr(network, "torso", None))


def resolve_replay_sequences(agent: str, config: ConfigT, networks: list[nn.Module]) -> ConfigT:
    """``config`` with ``sequence_length`` and ``burn_in_length`` set for the networks.

    A replay agent learns what to remember only from sequences: one replayed
    step unrolled from a carry gives the recurrent weights no gradient through
    time. Unset (``None``) fields become ``1`` and ``0`` for feed-forward
    networks and :data:`MEMORY_SEQUENCE_LENGTH` / :data:`MEMORY_BURN_IN_LENGTH`
    when a network has a memory torso. Raises ``ValueError`` for sequences on
    a feed-forward agent (nothing to carry) and for ``sequence_length=1`` with
    a memory torso.
    """
    length, burn_in = config.sequence_length, config.burn_in_length  # type: ignore[attr-defined]
    memory = [network.torso for network in networks if has_memory(network)]
    if not memory:
        if (length or 1) > 1 or (burn_in or 0) > 0:
            raise ValueError(
                f"{agent}: burn_in_length > 0 or sequence_length > 1 needs a recurrent "
                "(SequenceModel) torso; a feed-forward agent learns from single steps. Set "
                "burn_in_length=0 and sequence_length=1 (or leave both unset)."
            )
        length, burn_in = 1, 0
    elif length == 1:
        raise ValueError(
            f"{agent}: sequence_length=1 with a memory torso ({type(memory[0]).__name__}) "
            "trains no memory: a single replayed step gives the recurrent weights no gradient "
            "through time, while acting relies on the carry. Use sequence_length >= 2, or "
            f"leave it unset for the default of {MEMORY_SEQUENCE_LENGTH} learned steps after "
            f"{MEMORY_BURN_IN_LENGTH} burn-in steps; for a memoryless agent use a feed-forward "
            "torso (e.g. memorax.networks.MLP)."
        )
    else:
        length = MEMORY_SEQUENCE_LENGTH if length is None else length
        burn_in = MEMORY_BURN_IN_LENGTH if burn_in is None else burn_in
    return dataclasses.replace(cast(Any, config), sequence_length=length, burn_in_length=burn_in)


def check_policy_head(agent: str, env: Environment, actor: nn.Module) -> None:
    """Raise unless ``actor``'s head fits ``env``: ``Categorical(n)`` for ``Discrete(n)``,
    ``Gaussian(size)`` for a ``Box`` (other heads pass unchecked)."""
    space, head = env.action_space, getattr(actor, "head", None)
    if isinstance(space, Discrete):
        if isinstance(head, Gaussian):
            raise ValueError(
                f"{agent}: {env.name} has discrete actions {space}; use a "
                "Categorical head for the actor, not Gaussian."
            )
        if isinstance(head, Categorical) and head.action_dim != space.n:
            raise ValueError(
                f"{agent}: the actor's Categorical({head.action_dim}) does not match "
                f"{env.name}'s {space}; use Categorical({space.n})."
            )
    elif isinstance(space, Box):
        size = math.prod(space.shape)
        if isinstance(head, Categorical):
            raise ValueError(
                f"{agent}: {env.name} has continuous actions {space}; use a "
                "Gaussian head for the actor, not Categorical."
            )
        if isinstance(head, Gaussian) and head.action_dim != size:
            raise ValueError(
                f"{agent}: the actor's Gaussian({head.action_dim}) does not "
                f"match {env.name}'s {space}; use Gaussian({size})."
            )
    else:
        raise ValueError(
            f"{agent} supports Discrete and Box action spaces; {env.name} has {space}."
        )


def check_discrete_q_network(env: Environment, network: nn.Module, agent: str) -> None:
    """Raise unless ``env`` has Discrete actions and ``network`` a matching Q head."""
    space, head = env.action_space, getattr(network, "head", None)
    if not isinstance(space, Discrete):
        raise ValueError(
            f"{agent} needs a Discrete action space (it takes argmax over Q-values); "
            f"{env.name} has {space}."
        )
    if not isinstance(head, DiscreteQNetwork):
        raise ValueError(
            f"{agent}: the network's head must be a DiscreteQNetwork, got "
            f"{type(head).__name__}; use DiscreteQNetwork({space.n})."
        )
    if head.action_dim != space.n:
        raise ValueError(
            f"{agent}: the network's DiscreteQNetwork({head.action_dim}) does not match "
            f"{env.name}'s {space}; use DiscreteQNetwork({space.n})."
        )


def box_action_dim(space: Box, owner: str) -> int:
    """Flat action size of a bounded float ``Box``; ``ValueError`` naming ``owner`` otherwise."""
    low, high = np.asarray(space.low_array), np.asarray(space.high_array)
    if not np.issubdtype(np.dtype(space.dtype), np.floating):
        raise ValueError(f"{owner} needs a float Box action space; got {space}.")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(
            f"{owner}'s squashed policy acts in [low, high], so every action bound must be "
            f"finite; got {space}. Wrap the env to rescale its actions to finite bounds."
        )
    return math.prod(space.shape)


# ---------------------------------------------------------------- method arguments


def num_iterations(owner: str, num_steps: Any, per_iteration: int, unit: str = "iteration") -> int:
    """Iterations of ``per_iteration`` env steps that ``num_steps`` env steps make.

    Raises ``ValueError`` unless ``num_steps`` is a Python int of at least one
    iteration; warns when it is not a multiple (the remainder is not run).
    ``owner`` is the method, e.g. ``"SAC.train"``; ``unit`` is what the agent
    calls one iteration in its messages (``"update"`` for PPO and PQN).
    """
    if not is_int(num_steps) or num_steps < per_iteration:
        raise ValueError(
            f"{owner}: num_steps must be a Python int of at least num_envs * "
            f"config.num_steps = {per_iteration} env steps (one {unit}), got {num_steps!r}."
        )
    iterations, remainder = divmod(int(num_steps), per_iteration)
    if remainder:
        warnings.warn(
            f"{owner}: num_steps={num_steps} is not a multiple of num_envs * config.num_steps "
            f"= {per_iteration}; running {iterations} {unit}s = "
            f"{iterations * per_iteration} env steps.",
            stacklevel=3,
        )
    return iterations


def check_evaluate_arguments(owner: str, num_episodes: Any, max_steps: Any) -> None:
    """Raise ``ValueError`` unless both are positive ints (``owner``: e.g. ``"SAC.evaluate"``)."""
    for name, value in (("num_episodes", num_episodes), ("max_steps", max_steps)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}.")


def check_evaluation_env(env: Any, train_env: Environment, agent: str) -> None:
    """Raise unless ``env`` is an Environment with ``train_env``'s spaces."""
    if not isinstance(env, Environment):
        raise TypeError(
            f"{agent}.evaluate: env must be a memorax Environment, got {type(env).__name__}."
        )
    for space in ("observation_space", "action_space"):
        if getattr(env, space) != getattr(train_env, space):
            raise ValueError(
                f"{agent}.evaluate: the evaluation env's {space} {getattr(env, space)} differs "
                f"from the training env's {getattr(train_env, space)}; the agent cannot "
                "act in it."
            )


def check_actor_critic_heads(
    env: Environment, actor: nn.Module, critic: nn.Module
) -> tuple[bool, int]:
    """SAC's heads for ``env``: ``(discrete, action_dim)``, or a clear error naming the head
    each network needs (a ``Categorical`` actor and ``DiscreteQNetwork`` critic for
    ``Discrete``, a ``SquashedGaussian`` actor and a twin or plain continuous Q critic for a
    bounded ``Box``)."""
    space = env.action_space
    actor_head, critic_head = getattr(actor, "head", None), getattr(critic, "head", None)
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
                "TwinContinuousQNetwork or ContinuousQNetwork (it scores an action); got "
                f"{type(critic_head).__name__}."
            )
        return False, size
    raise ValueError(
        f"SAC supports Discrete and bounded Box action spaces; {env.name} has {space} "
        f"(actor head {type(actor_head).__name__})."
    )


def _describe(head: Any) -> str:
    dim = getattr(head, "action_dim", None)
    return type(head).__name__ + ("" if dim is None else f"({dim})")
