"""Every agent trains every memory model it is given: one update moves every recurrent weight.

A replay agent that learns from single replayed steps unrolled from the
initial carry gives the recurrent (hidden-to-hidden) weights exactly zero
gradient while acting relies on the carry. With Adam, a leaf that receives
no gradient does not move at all, so "every leaf of the torso changed after
one update" is a structural check that memory is trained, on a tiny
configuration.

Every agent's recurrent learning goes through one of two shared functions:
``on_policy.sequence_apply`` (PPO, PQN: whole sequences from the rollout's
start carries) and ``replay.unroll`` (DQN, R2D2, SAC: replayed sequences
step by step). CI checks every agent end to end with a GRU (the agent's own
wiring), and every registered model through both shared functions directly
(the model's part: a gradient reaches every torso leaf past burn-in and an
episode start), which compiles a network instead of a whole agent, about a
tenth of the time. The whole agent x model grid, 70 compiled agents, runs in
``nox -s expensive``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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
    on_policy,
    replay,
)
from memorax.algorithms.acting import StepInput, apply_network, network_arguments
from memorax.envs import make
from memorax.networks import (
    MLP,
    SEQUENCE_MODELS,
    Categorical,
    DiscreteQNetwork,
    FeatureExtractor,
    Network,
    OneHot,
    VNetwork,
)

NUM_ENVS = 2
STEPS = 8  # steps per env copy in the one iteration
WIDTH = 16
REPLAY = {"num_envs": NUM_ENVS, "num_steps": STEPS, "gradient_steps": 1, "batch_size": 2,
          "buffer_size": NUM_ENVS * STEPS, "learning_starts": NUM_ENVS * STEPS}  # fmt: skip


def network(torso: str, head: nn.Module) -> Network:
    extractor = FeatureExtractor(
        MLP((WIDTH,), activation=nn.tanh), action_extractor=OneHot(2), reward_extractor=MLP((4,))
    )
    return Network(extractor, SEQUENCE_MODELS[torso](WIDTH), head)


def build(algo: str, torso: str):
    """``(agent, names of the params fields to check)`` for a tiny agent on MemoryChain."""
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS, memory_length=3)
    adam = optax.adam(1e-3)
    if algo == "ppo":
        config = PPOConfig(num_envs=NUM_ENVS, num_steps=STEPS, num_minibatches=1, update_epochs=1)
        actor, critic = network(torso, Categorical(2)), network(torso, VNetwork())
        return PPO(config, env, env_params, actor, critic, adam, adam), (
            "actor_params",
            "critic_params",
        )
    if algo == "pqn":
        config = PQNConfig(num_envs=NUM_ENVS, num_steps=STEPS, num_minibatches=1, update_epochs=1)
        return PQN(config, env, env_params, network(torso, DiscreteQNetwork(2)), adam), ("params",)
    if algo == "dqn":
        # The default sequence lengths for a memory torso, shortened to fit the tiny buffer.
        config = DQNConfig(**REPLAY, sequence_length=4, burn_in_length=2)
        return DQN(config, env, env_params, network(torso, DiscreteQNetwork(2)), adam), ("params",)
    if algo == "r2d2":
        config = R2D2Config(**REPLAY, sequence_length=4, burn_in_length=2, n_step=2)
        return R2D2(config, env, env_params, network(torso, DiscreteQNetwork(2)), adam), ("params",)
    config = SACConfig(**REPLAY, sequence_length=4, burn_in_length=2)
    actor, critic = network(torso, Categorical(2)), network(torso, DiscreteQNetwork(2))
    return SAC(config, env, env_params, actor, critic, adam, adam), (
        "actor_params",
        "critic_params",
    )


def frozen_torso_leaves(before, after) -> list[str]:
    """Paths of torso parameters that one update left exactly unchanged."""
    frozen = []
    torso_before, torso_after = before["params"]["torso"], after["params"]["torso"]
    for (path, old), new in zip(
        jax.tree_util.tree_flatten_with_path(torso_before)[0],
        jax.tree.leaves(torso_after),
        strict=True,
    ):
        if np.array_equal(np.asarray(old), np.asarray(new)):
            frozen.append(jax.tree_util.keystr(path))
    return frozen


AGENTS = ("ppo", "pqn", "dqn", "r2d2", "sac")
# Each agent with a GRU, end to end; every model goes through the shared paths below.
CI_GRID = [(algo, "gru") for algo in AGENTS]
FULL_GRID = [(algo, torso) for algo in AGENTS for torso in SEQUENCE_MODELS]


def assert_one_update_trains_every_recurrent_weight(algo: str, torso: str) -> None:
    agent, fields = build(algo, torso)
    state = agent.init(jax.random.key(0))
    trained = agent.train(jax.random.key(1), state, num_steps=NUM_ENVS * STEPS)
    for field in fields:
        frozen = frozen_torso_leaves(getattr(state, field), getattr(trained, field))
        assert not frozen, f"{algo} + {torso}: {field} torso leaves got no gradient: {frozen}"


@pytest.mark.parametrize(("algo", "torso"), CI_GRID)
def test_one_update_gives_every_recurrent_weight_a_gradient(algo, torso):
    assert_one_update_trains_every_recurrent_weight(algo, torso)


@pytest.mark.expensive
@pytest.mark.parametrize(("algo", "torso"), [pair for pair in FULL_GRID if pair not in CI_GRID])
def test_every_agent_with_every_model_trains_every_recurrent_weight(algo, torso):
    assert_one_update_trains_every_recurrent_weight(algo, torso)


BATCH, LENGTH, BURN_IN = 2, 8, 2


def replayed_steps() -> dict[str, jax.Array]:
    """``[B, L]`` steps as a replay buffer returns them; row 0 starts an episode midway."""
    keys = jax.random.split(jax.random.key(3), 5)
    start = jnp.zeros((BATCH, LENGTH), bool).at[:, 0].set(True).at[0, LENGTH // 2 + 1].set(True)
    return {
        "observation": jax.random.normal(keys[0], (BATCH, LENGTH, 3)),
        "final_observation": jax.random.normal(keys[1], (BATCH, LENGTH, 3)),
        "episode_start": start,
        "previous_action": jax.random.randint(keys[2], (BATCH, LENGTH), 0, 2),
        "action": jax.random.randint(keys[3], (BATCH, LENGTH), 0, 2),
        "previous_reward": jax.random.normal(keys[4], (BATCH, LENGTH)),
        "reward": jax.random.normal(keys[4], (BATCH, LENGTH)) + 1.0,
    }


def torso_gradient(path: str, torso: str):
    """The gradient of a squared-output loss through ``path`` with respect to the torso."""
    net = network(torso, DiscreteQNetwork(2))
    steps = replayed_steps()
    inputs = StepInput(
        steps["observation"], steps["episode_start"], steps["previous_action"],
        steps["previous_reward"],
    )  # fmt: skip
    carry = net.initialize_carry(BATCH)
    params = net.init(jax.random.key(0), *network_arguments(inputs, carry))

    def loss(params):
        if path == "sequence_apply":
            outputs = on_policy.sequence_apply(net, params, inputs, carry, BURN_IN)
            return jnp.sum(jnp.square(outputs))

        def apply(carry, inputs, _):
            return apply_network(net, params, inputs, carry)

        outputs, following = replay.unroll(apply, carry, steps, burn_in=BURN_IN)
        # unroll returns every step; the agents' losses read those after burn-in.
        learned = (outputs[:, BURN_IN:], following[:, BURN_IN:])
        return sum(jnp.sum(jnp.square(x)) for x in learned)

    return jax.jit(jax.grad(loss))(params)["params"]["torso"]


@pytest.mark.parametrize("torso", sorted(SEQUENCE_MODELS))
@pytest.mark.parametrize("path", ["sequence_apply", "unroll"])
def test_every_model_gets_a_gradient_in_every_torso_leaf_through_each_shared_path(path, torso):
    gradient = torso_gradient(path, torso)
    zero = [
        jax.tree_util.keystr(leaf_path)
        for leaf_path, leaf in jax.tree_util.tree_flatten_with_path(gradient)[0]
        if not np.any(np.asarray(leaf))
    ]
    assert not zero, f"{torso} through {path}: torso leaves with zero gradient: {zero}"


@pytest.mark.parametrize("algo", ["dqn", "sac"])
def test_memory_torso_defaults_to_burned_in_sequences(algo):
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS)
    adam = optax.adam(1e-3)
    if algo == "dqn":
        agent = DQN(DQNConfig(num_envs=NUM_ENVS), env, env_params,
                    network("gru", DiscreteQNetwork(2)), adam)  # fmt: skip
    else:
        agent = SAC(SACConfig(num_envs=NUM_ENVS), env, env_params, network("gru", Categorical(2)),
                    network("gru", DiscreteQNetwork(2)), adam, adam)  # fmt: skip
    assert (agent.config.sequence_length, agent.config.burn_in_length) == (20, 10)
    assert agent.buffer.sequence_length >= 30


@pytest.mark.parametrize("algo", ["dqn", "sac"])
def test_single_step_replay_with_a_memory_torso_is_refused(algo):
    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS)
    adam = optax.adam(1e-3)
    message = r"sequence_length=1 with a memory torso \(GRU\) trains no memory"
    with pytest.raises(ValueError, match=message):
        if algo == "dqn":
            config = DQNConfig(num_envs=NUM_ENVS, sequence_length=1)
            DQN(config, env, env_params, network("gru", DiscreteQNetwork(2)), adam)
        else:
            config = SACConfig(num_envs=NUM_ENVS, sequence_length=1)
            actor, critic = network("gru", Categorical(2)), network("gru", DiscreteQNetwork(2))
            SAC(config, env, env_params, actor, critic, adam, adam)
