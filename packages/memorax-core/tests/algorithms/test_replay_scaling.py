"""Replay cost does not grow with capacity: no O(capacity) work in a compiled training loop.

A structural guard, not a timed test: the replay agents' compiled ``train`` is
searched for operations inside loops whose result has a buffer-sized axis.
Writing into the buffer in place (a dynamic-update-slice or scatter) is the
only such work allowed; a copy, select or elementwise pass over a buffer-sized
array costs O(capacity) every iteration (issue 21: DQN at 1M capacity ran at
0.10 of its speed at 10k, from whole-buffer copies XLA inserted around the
write). ``benchmarks/replay.py`` measures the speed.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax
import pytest

from memorax import make
from memorax.algorithms import DQN, R2D2, SAC, DQNConfig, R2D2Config, SACConfig
from memorax.networks import Categorical, DiscreteQNetwork
from tests.algorithms.conftest import gru_network, mlp_network

NUM_ENVS = 2
# A per-env capacity no other array in these programs has as an axis.
CAPACITY_PER_ENV = 4099

_INSTRUCTION = re.compile(r"^\s*(ROOT )?%(\S+) = (.+?) ([a-z][\w-]*)\(")
_CALLED = re.compile(r"(?:calls|to_apply)=%([\w.\-]+)")
_IN_PLACE = {"dynamic-update-slice", "scatter"}
# Ops that name or forward a buffer without touching its elements.
_PLUMBING = {
    "parameter", "get-tuple-element", "tuple", "bitcast", "while", "conditional", "call",
    "constant", "after-all", "opt-barrier", "custom-call",
}  # fmt: skip


def _computations(hlo: str) -> dict[str, list[str]]:
    """``{name: instruction lines}`` of an HLO module's text; the entry is named ``ENTRY``."""
    computations: dict[str, list[str]] = {}
    name = None
    for line in hlo.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            name = "ENTRY" if line.startswith("ENTRY") else line.split(" ")[0].lstrip("%")
            computations[name] = []
        elif line.startswith("}"):
            name = None
        elif name is not None:
            computations[name].append(line)
    return computations


def buffer_sized_work(hlo: str, axis: int) -> tuple[list[str], int]:
    """Instructions outside the entry computation with an ``axis``-sized result dimension.

    Returns:
        ``(offending, in_place)``: the names and ops of instructions that do
        O(``axis``) work (anything but an in-place update or plumbing), and the
        number of in-place updates seen (the writes; zero would mean the search
        did not find the buffer at all).
    """
    computations = _computations(hlo)
    roots, fused = {}, set()
    for name, lines in computations.items():
        for line in lines:
            match = _INSTRUCTION.match(line)
            if match and match.group(1):
                roots[name] = match.group(4)
            if match and match.group(4) == "fusion":
                fused.update(_CALLED.findall(line))
    sized = re.compile(rf"[\[,]{axis}[\],]")
    offending, in_place = [], 0
    for name, lines in computations.items():
        # The entry runs once per call (copying undonated inputs there is O(capacity)
        # per call, not per iteration); fused computations are judged by their root.
        if name == "ENTRY" or name in fused:
            continue
        for line in lines:
            match = _INSTRUCTION.match(line)
            if not match or not sized.search(match.group(3)):
                continue
            op = match.group(4)
            if op == "fusion":
                op = f"fusion({roots.get(_CALLED.findall(line)[0])})"
            if op in _IN_PLACE or op.removeprefix("fusion(").rstrip(")") in _IN_PLACE:
                in_place += 1
            elif op not in _PLUMBING:
                offending.append(f"{match.group(2)}: {op}")
    return offending, in_place


def _compiled_train(agent, num_steps: int) -> str:
    state = agent.init(jax.random.key(0))
    train = jax.jit(agent.train, static_argnums=2)
    return train.lower(jax.random.key(1), state, num_steps).compile().as_text()


def _dqn():
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    config = DQNConfig(num_envs=NUM_ENVS, buffer_size=NUM_ENVS * CAPACITY_PER_ENV)
    return DQN(config, env, params, mlp_network(DiscreteQNetwork(2)), optax.adam(1e-3))


def _dqn_n_step():
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    config = DQNConfig(num_envs=NUM_ENVS, buffer_size=NUM_ENVS * CAPACITY_PER_ENV, n_step=3)
    return DQN(config, env, params, mlp_network(DiscreteQNetwork(2)), optax.adam(1e-3))


def _sac():
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    config = SACConfig(num_envs=NUM_ENVS, buffer_size=NUM_ENVS * CAPACITY_PER_ENV)
    actor, critic = mlp_network(Categorical(2)), mlp_network(DiscreteQNetwork(2))
    return SAC(config, env, params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def _r2d2():
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    config = R2D2Config(
        num_envs=NUM_ENVS,
        buffer_size=NUM_ENVS * CAPACITY_PER_ENV,
        burn_in_length=2,
        sequence_length=4,
        batch_size=8,
    )
    return R2D2(config, env, params, gru_network(DiscreteQNetwork(2)), optax.adam(1e-3))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_dqn, id="dqn-uniform"),
        pytest.param(_dqn_n_step, id="dqn-uniform-3-step-windows"),
        pytest.param(_sac, id="sac-uniform"),
        pytest.param(_r2d2, id="r2d2-prioritised"),
    ],
)
def test_training_loop_touches_only_written_and_sampled_steps(build):
    """Each iteration writes its steps in place and reads only sampled sequences (the
    configs' defaults: one step per env copy, one gradient step: the case that copied)."""
    hlo = _compiled_train(build(), num_steps=4 * NUM_ENVS)
    offending, in_place = buffer_sized_work(hlo, CAPACITY_PER_ENV)
    assert in_place > 0, "no in-place write into the buffer found; the search is broken"
    assert offending == [], f"O(capacity) work in the training loop: {offending}"


def test_search_finds_a_buffer_copy_in_a_loop():
    """The guard can fail: reading a buffer and writing it in place with no order between
    them makes XLA copy the whole buffer every iteration."""

    def loop(buffer, key):
        def body(step, carry):
            buffer, key, total = carry
            key, draw = jax.random.split(key)
            slots = jax.random.randint(draw, (8,), 0, CAPACITY_PER_ENV)
            total = total + jnp.sum(buffer[0, slots])
            buffer = buffer.at[:, step % CAPACITY_PER_ENV].set(1.0)
            return buffer, key, total

        return jax.lax.fori_loop(0, 10, body, (buffer, key, jnp.float32(0)))

    buffer = jnp.zeros((NUM_ENVS, CAPACITY_PER_ENV))
    hlo = jax.jit(loop).lower(buffer, jax.random.key(0)).compile().as_text()
    offending, in_place = buffer_sized_work(hlo, CAPACITY_PER_ENV)
    assert in_place > 0
    assert any(entry.endswith(": copy") for entry in offending), offending
