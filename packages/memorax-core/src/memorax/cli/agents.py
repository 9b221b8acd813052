"""The agents and networks the CLI can build, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import optax

from memorax.algorithms import (
    DQN,
    PPO,
    PQN,
    R2D2,
    SAC,
    DQNConfig,
    PPOConfig,
    PQNConfig,
    R2D2Config,
    SACConfig,
)
from memorax.envs import Box, Discrete, Environment
from memorax.networks import (
    MLP,
    SEQUENCE_MODELS,
    Categorical,
    Dense,
    DiscreteQNetwork,
    FeatureExtractor,
    Gaussian,
    LayerNorm,
    Network,
    OneHot,
    SquashedGaussian,
    TwinContinuousQNetwork,
    VNetwork,
)

__all__ = [
    "ALGORITHMS",
    "TORSOS",
    "AlgorithmSpec",
    "build_actor_critic",
    "build_sac_networks",
]

TORSOS = ("mlp", *SEQUENCE_MODELS)
"""``--torso`` choices: a feed-forward MLP or any registered sequence model."""


@dataclass(frozen=True)
class AlgorithmSpec:
    """How the CLI builds one algorithm.

    Attributes:
        config_class: the frozen config dataclass (its fields become options).
        defaults: CLI defaults that differ from the config class's own.
        build: ``build(config, env, env_params, torso, hidden_size,
            learning_rate, metrics_callback, injected_learning_rate=False) ->
            agent``; ``injected_learning_rate`` builds the optimizers with
            ``optax.inject_hyperparams``, so that a sweep can set the rate.
        memory_defaults: defaults that replace ``defaults`` for a memory torso
            (a replay agent learns from sequences then, so fewer of them per
            gradient step).
        default_torso: the torso when ``--torso`` is not given (``gru`` for an
            agent that needs memory, such as R2D2).
    """

    config_class: type
    defaults: dict[str, Any]
    build: Callable[..., Any]
    memory_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    default_torso: str = "mlp"

    def config_fields(self) -> list[dataclasses.Field]:
        """The config's fields, in declaration order."""
        return list(dataclasses.fields(self.config_class))

    def defaults_for(self, torso: str) -> dict[str, Any]:
        """The CLI's defaults for a run with ``torso``."""
        return {**self.defaults, **(self.memory_defaults if torso != "mlp" else {})}


def _network_factory(env: Environment, torso: str, hidden_size: int) -> Callable[..., Network]:
    """``network(head)``: observation MLP -> the named torso -> ``head``, for ``env``'s spaces.

    Memory torsos also see the previous action and reward, which a memory
    agent needs to infer what it cannot observe.
    """
    if torso not in TORSOS:
        raise ValueError(f"Unknown torso {torso!r}; choose one of: {', '.join(TORSOS)}.")
    space = env.action_space
    if isinstance(space, Discrete):
        action_extractor: nn.Module = OneHot(space.n)
    elif isinstance(space, Box) and len(space.shape) == 1:
        action_extractor = MLP((hidden_size // 4,), activation=nn.tanh)
    else:
        raise ValueError(
            f"The CLI builds networks for Discrete and flat Box action spaces; {env.name} has "
            f"{space}. Build the networks yourself with memorax.networks."
        )

    def network(output: nn.Module) -> Network:
        observation = MLP((hidden_size,), activation=nn.tanh)
        if torso == "mlp":
            return Network(FeatureExtractor(observation), MLP((hidden_size,), nn.tanh), output)
        extractor = FeatureExtractor(
            observation,
            action_extractor=action_extractor,
            reward_extractor=MLP((8,), activation=nn.tanh),
        )
        return Network(extractor, SEQUENCE_MODELS[torso](hidden_size), output)

    return network


def build_actor_critic(env: Environment, torso: str, hidden_size: int) -> tuple[Network, Network]:
    """A PPO actor (categorical or Gaussian) and critic for ``env`` with the named torso."""
    network = _network_factory(env, torso, hidden_size)
    space = env.action_space
    head = Categorical(space.n) if isinstance(space, Discrete) else Gaussian(space.shape[0])
    return network(head), network(VNetwork())


def build_sac_networks(env: Environment, torso: str, hidden_size: int) -> tuple[Network, Network]:
    """A SAC actor and critic for ``env`` with the named torso.

    Discrete actions: categorical actor, one Q-value per action. Box actions:
    squashed Gaussian actor, twin Q-heads.
    """
    network = _network_factory(env, torso, hidden_size)
    space = env.action_space
    if isinstance(space, Discrete):
        return network(Categorical(space.n)), network(DiscreteQNetwork(space.n))
    return network(SquashedGaussian(space.shape[0])), network(
        TwinContinuousQNetwork((hidden_size,))
    )


def _adam(learning_rate: float, injected: bool, **kwargs: Any) -> optax.GradientTransformation:
    """Adam; with ``injected`` its learning rate lives in its state (a sweep sets it there)."""
    if injected:
        return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, **kwargs)
    return optax.adam(learning_rate, **kwargs)


def _build_ppo(
    config: PPOConfig,
    env: Environment,
    env_params: Any,
    torso: str,
    hidden_size: int,
    learning_rate: float,
    metrics_callback: Callable | None,
    injected_learning_rate: bool = False,
) -> PPO:
    actor, critic = build_actor_critic(env, torso, hidden_size)
    return PPO(
        config,
        env,
        env_params,
        actor,
        critic,
        _adam(learning_rate, injected_learning_rate, eps=1e-5),
        _adam(learning_rate, injected_learning_rate, eps=1e-5),
        metrics_callback=metrics_callback,
    )


def build_q_network(env: Environment, torso: str, hidden_size: int) -> Network:
    """A Q-network for ``env``'s discrete actions with the named torso and layer norm.

    Layer norm after the torso's input layer keeps Q-learning without a
    target network (PQN) stable.
    """
    space = env.action_space
    if not isinstance(space, Discrete):
        raise ValueError(
            f"Q-learning agents need Discrete actions; {env.name} has {space}. Use --algo ppo."
        )
    observation = nn.Sequential([Dense(hidden_size), LayerNorm(), nn.relu])
    if torso == "mlp":
        extractor = FeatureExtractor(observation)
        return Network(extractor, MLP((hidden_size,)), DiscreteQNetwork(space.n))
    if torso not in TORSOS:
        raise ValueError(f"Unknown torso {torso!r}; choose one of: {', '.join(TORSOS)}.")
    extractor = FeatureExtractor(
        observation, action_extractor=OneHot(space.n), reward_extractor=MLP((8,))
    )
    return Network(extractor, SEQUENCE_MODELS[torso](hidden_size), DiscreteQNetwork(space.n))


def _build_q_agent(agent_class: type) -> Callable[..., Any]:
    def build(
        config, env, env_params, torso, hidden_size, learning_rate, metrics_callback,
        injected_learning_rate=False,
    ):  # fmt: skip
        network = build_q_network(env, torso, hidden_size)
        optimizer = _adam(learning_rate, injected_learning_rate)
        return agent_class(
            config, env, env_params, network, optimizer, metrics_callback=metrics_callback
        )

    return build


def _build_r2d2(
    config: R2D2Config,
    env: Environment,
    env_params: Any,
    torso: str,
    hidden_size: int,
    learning_rate: float,
    metrics_callback: Callable | None,
    injected_learning_rate: bool = False,
) -> R2D2:
    if torso == "mlp":
        raise ValueError(
            "--algo r2d2 replays sequences from stored recurrent carries, so it needs a memory "
            f"torso: pass --torso gru (or one of: {', '.join(TORSOS[1:])}). For a feed-forward "
            "Q-network use --algo dqn."
        )
    return _build_q_agent(R2D2)(
        config, env, env_params, torso, hidden_size, learning_rate, metrics_callback,
        injected_learning_rate,
    )  # fmt: skip


def _build_sac(
    config: SACConfig,
    env: Environment,
    env_params: Any,
    torso: str,
    hidden_size: int,
    learning_rate: float,
    metrics_callback: Callable | None,
    injected_learning_rate: bool = False,
) -> SAC:
    actor, critic = build_sac_networks(env, torso, hidden_size)
    return SAC(
        config,
        env,
        env_params,
        actor,
        critic,
        _adam(learning_rate, injected_learning_rate),
        _adam(learning_rate, injected_learning_rate),
        metrics_callback=metrics_callback,
    )


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "ppo": AlgorithmSpec(
        config_class=PPOConfig,
        defaults={"num_envs": 4, "num_steps": 128},
        build=_build_ppo,
    ),
    "pqn": AlgorithmSpec(
        config_class=PQNConfig,
        defaults={"num_envs": 32, "num_steps": 16, "epsilon_decay_steps": 30_000},
        build=_build_q_agent(PQN),
    ),
    "dqn": AlgorithmSpec(
        config_class=DQNConfig,
        defaults={"num_envs": 8, "num_steps": 4, "gradient_steps": 2, "batch_size": 128},
        build=_build_q_agent(DQN),
        memory_defaults={"batch_size": 32},
    ),
    "r2d2": AlgorithmSpec(
        config_class=R2D2Config,
        defaults={
            "num_envs": 16,
            "num_steps": 8,
            "gradient_steps": 2,
            "gamma": 0.99,
            "target_update_interval": 500,
        },
        build=_build_r2d2,
        default_torso="gru",
    ),
    "sac": AlgorithmSpec(
        config_class=SACConfig,
        defaults={"num_envs": 4, "gradient_steps": 4, "learning_starts": 1_000},
        build=_build_sac,
        memory_defaults={"num_envs": 8, "num_steps": 4, "gradient_steps": 2, "batch_size": 32},
    ),
}
"""``--algo`` choices."""
