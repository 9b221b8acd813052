"""An agent trained on top of a backend: the opt-in part of the contract suite.

The environment contract (:class:`~memorax.testing.EnvironmentContract`)
checks envs alone and imports no agent. A backend that also wants a short
PPO run on its first env id subclasses :class:`AgentRunContract` next to it::

    class TestNavixContract(EnvironmentContract, AgentRunContract):
        env_ids = ("navix::Navix-Empty-5x5-v0",)

The agent is imported when the check runs, so a backend without it, or a
user of the suite without ``memorax.algorithms``, never pays for it.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax
import pytest

from memorax.envs import Box, Discrete
from memorax.testing.contract import _check

__all__ = ["AgentRunContract"]


class AgentRunContract:
    """Mixin for an :class:`~memorax.testing.EnvironmentContract` subclass: a tiny PPO
    agent trains two updates on the backend's first env id."""

    env_ids: tuple[str, ...]
    make_kwargs: dict[str, dict[str, Any]]

    def test_short_ppo_run(self) -> None:
        """A tiny PPO agent trains two updates on the backend's first env id.

        One id per backend: compiling an agent around an env is the most
        expensive check, and the other points already cover each id.
        """
        from memorax.algorithms import PPO, PPOConfig
        from memorax.networks import MLP, Categorical, FeatureExtractor, Gaussian, Network, VNetwork

        env_id = self.env_ids[0]
        compiled = self._compile(env_id, self.make_kwargs.get(env_id, {}))  # type: ignore[attr-defined]
        env = compiled.env
        space = env.action_space
        if isinstance(space, Discrete):
            head: Any = Categorical(space.n)
        elif isinstance(space, Box) and len(space.shape) == 1:
            head = Gaussian(space.shape[0])
        else:
            pytest.skip(f"PPO has no policy head for {space} yet")

        def network(output: Any) -> Network:
            return Network(FeatureExtractor(MLP((8,))), MLP((8,)), output)

        num_steps = 8
        config = PPOConfig(
            num_envs=env.num_envs, num_steps=num_steps, num_minibatches=1, update_epochs=1
        )
        optimizer = optax.adam(1e-3)
        agent = PPO(
            config, env, compiled.params, network(head), network(VNetwork()), optimizer, optimizer
        )
        try:
            state = agent.train(
                jax.random.key(25), agent.init(jax.random.key(24)), 2 * num_steps * env.num_envs
            )
        finally:
            compiled.env.close()
        losses = np.stack([np.asarray(state.metrics[k]) for k in ("policy_loss", "value_loss")])
        _check(
            int(state.env_steps) == 2 * num_steps * env.num_envs and np.all(np.isfinite(losses)),
            compiled.env_id,
            "agent smoke run",
            f"PPO took {int(state.env_steps)} env steps with losses {losses.tolist()}",
        )
