"""The agent the "Writing your own agent" page builds learns CartPole.

The page's first code block is the whole agent; it is run here as written
(not copied), then trained with a real budget on the skeleton it documents.
"""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import optax

# pytest puts this folder on sys.path (its default "prepend" import mode).
from test_code_blocks import python_blocks

from memorax import make
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork

PAGE = Path(__file__).resolve().parents[2] / "docs" / "custom-agent.md"


def page_agent() -> dict:
    """The namespace the page's agent block defines (``A2C``, ``A2CConfig``, ...)."""
    line, code = python_blocks(PAGE)[0]
    namespace: dict = {"__name__": "docs_custom_agent"}
    exec(compile(code, f"{PAGE.name}:{line}", "exec", dont_inherit=True), namespace)
    return namespace


def mlp(head: nn.Module) -> Network:
    return Network(FeatureExtractor(MLP((64,), activation=nn.tanh)), MLP((64,), nn.tanh), head)


def test_the_page_agent_is_short():
    _, code = python_blocks(PAGE)[0]
    assert len(code.splitlines()) < 150


def test_the_page_agent_balances_cartpole():
    agent_module = page_agent()
    env, env_params = make("gymnax::CartPole-v1", num_envs=16)
    config = agent_module["A2CConfig"](num_steps=16)
    agent = agent_module["A2C"](config, env, env_params, mlp(Categorical(2)), mlp(VNetwork()),
                                optax.adam(1e-3))  # fmt: skip
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(jax.random.key(1), 2), states, 16 * 16 * 400
    )
    states = jax.vmap(agent.evaluate)(jax.random.split(jax.random.key(2), 2), states)
    returns = np.nanmean(np.asarray(states.evaluation.returns), axis=(1, 2))
    # A random policy lasts ~22 steps.
    assert returns.min() >= 150, returns
