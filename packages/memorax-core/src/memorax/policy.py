"""A trained agent back out of its run directory: load, act, evaluate.

``memorax train`` leaves ``run.json`` (the settings) and checkpoints of every
seed's whole training state. :func:`load_run` rebuilds the agent and its
networks from the settings and restores a checkpoint; :class:`Policy` is one
seed's acting policy from it, for inference anywhere, including on raw numpy
observations of a plain gymnasium env::

    policy = Policy.load("runs/ppo-CartPole-v1-...")
    carry = policy.initial_carry()
    observation, _ = gym_env.reset(seed=0)
    action, carry = policy.act(key, observation, carry, episode_start=True)

A memory agent's network also saw its previous action and reward while it
trained: the carry keeps the previous action for you; pass the reward the
previous action earned as ``reward=`` (it counts as 0 at an episode start).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from memorax.algorithms.acting import StepInput, apply_network
from memorax.checkpoints import Checkpointer
from memorax.envs import Environment, make

__all__ = ["LoadedRun", "Policy", "PolicyCarry", "load_run"]


@dataclasses.dataclass
class LoadedRun:
    """A run directory's agent rebuilt from its settings, with a checkpoint restored.

    Attributes:
        run_dir: the run directory.
        settings: its :class:`~memorax.cli.run_settings.RunSettings`.
        agent: the agent, built as ``memorax train`` built it.
        env: the env the agent was built on (close it with :meth:`close`).
        env_params: its params.
        states: every seed's agent state (leading seed axis).
        step: the checkpoint's step.
    """

    run_dir: Path
    settings: Any
    agent: Any
    env: Environment
    env_params: Any
    states: Any
    step: int

    def close(self) -> None:
        """Closes the env (a callback env's host envs and workers)."""
        self.env.close()


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """The agent of a ``memorax train`` run with checkpoint ``step`` (default: the latest).

    Raises:
        FileNotFoundError: ``run_dir`` has no ``run.json`` or no checkpoint.
        ValueError: a sweep run (no checkpoints), or a checkpoint that does not fit.
    """
    # The CLI's modules are imported here: they import every agent and network.
    from memorax.cli.agents import ALGORITHMS
    from memorax.cli.run_settings import RUN_FILE, RunSettings

    run_dir = Path(run_dir)
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {RUN_FILE}: pass a run directory written by `memorax train`."
        )
    settings = RunSettings.from_json(run_file.read_text())
    if settings.sweep:
        raise ValueError(
            f"{run_dir} is a sweep run, which keeps no checkpoints; train the setting you "
            "want as a run of its own to load it."
        )
    spec = ALGORITHMS[settings.algo]
    config = spec.config_class(**{**spec.defaults_for(settings.torso), **settings.algo_config})
    env, env_params = make(settings.env, num_envs=config.num_envs, **settings.env_kwargs)
    try:
        agent = spec.build(
            config, env, env_params, settings.torso, settings.hidden_size,
            settings.learning_rate, None,
        )  # fmt: skip
        # An abstract target: nothing is initialised, no host env is stepped.
        one = jax.eval_shape(agent.init, jax.random.key(0))
        vmapped = env.capabilities.vmap_over_seeds
        target = (
            jax.tree.map(lambda x: jax.ShapeDtypeStruct((settings.seeds, *x.shape), x.dtype), one)
            if vmapped
            else one
        )
        with Checkpointer(run_dir, None) as checkpointer:
            latest = checkpointer.latest_step()
            if latest is None:
                raise FileNotFoundError(f"{run_dir} has no checkpoint to load.")
            step = latest if step is None else step
            states = checkpointer.restore(target, step)
        if not vmapped:  # seeds trained one after another: the checkpoint holds the last
            states = jax.tree.map(lambda x: x[None], states)
    except BaseException:
        env.close()
        raise
    return LoadedRun(run_dir, settings, agent, env, env_params, states, int(step))


class PolicyCarry(struct.PyTreeNode):
    """What a :class:`Policy` carries from one step to the next.

    Attributes:
        torso: the network's torso carry (``None`` for an MLP torso).
        previous_action: ``[B]`` (discrete) or ``[B, A]`` (continuous), the policy's
            last action, which memory networks see.
    """

    torso: Any
    previous_action: jax.Array


class Policy:
    """One seed's trained policy; acts on batched or single observations, jittable.

    Build it with :meth:`load` (or :meth:`from_run`). The action it returns is
    the env's (discrete indices offset by the space's start, continuous
    actions rescaled and clipped to the ``Box``), as training fed the env.
    """

    def __init__(self, agent: Any, params: Any, *, name: str = "policy"):
        self.agent = agent
        self.params = params
        self.name = name
        self.network = agent.policy_network
        self.observation_space = agent.env.observation_space
        self.action_space = agent.env.action_space
        self._act = jax.jit(self._act_batch, static_argnames="deterministic")

    @classmethod
    def load(cls, run_dir: str | Path, *, step: int | None = None, seed: int = 0) -> Policy:
        """Seed ``seed``'s policy from checkpoint ``step`` (default: the latest) of a run."""
        run = load_run(run_dir, step)
        try:
            return cls.from_run(run, seed)
        finally:
            run.close()  # the policy needs the networks and parameters, not the env

    @classmethod
    def from_run(cls, run: LoadedRun, seed: int = 0) -> Policy:
        """Seed ``seed``'s policy from a :class:`LoadedRun`."""
        seeds = len(jax.tree.leaves(run.states)[0])  # the seeds the checkpoint holds
        if not isinstance(seed, int) or not 0 <= seed < seeds:
            raise ValueError(
                f"seed must be one of the run's seeds, 0 to {seeds - 1}; got {seed!r}."
            )
        state = jax.tree.map(lambda x: x[seed], run.states)
        params = run.agent._policy_params(state)
        name = f"{run.settings.algo} on {run.settings.env}, seed {seed}, step {run.step}"
        return cls(run.agent, params, name=name)

    def initial_carry(self, batch_size: int = 1) -> PolicyCarry:
        """The carry before a first step, for ``batch_size`` envs acting together."""
        return PolicyCarry(
            torso=self.network.initialize_carry(batch_size),
            previous_action=self.agent._zero_actions(batch_size),
        )

    def act(
        self,
        key: jax.Array,
        observation: Any,
        carry: PolicyCarry,
        episode_start: Any,
        reward: Any = None,
        *,
        deterministic: bool = True,
    ) -> tuple[jax.Array, PolicyCarry]:
        """The action for ``observation`` and the next carry.

        Args:
            key: PRNG key (used only when ``deterministic`` is False).
            observation: ``[B, *obs_shape]``, or ``obs_shape`` for a single env (the
                action then comes back without the batch axis; the carry stays batched).
            carry: from :meth:`initial_carry` or the previous call.
            episode_start: ``[B]`` bool (or one bool): ``observation`` starts an
                episode, so memory is reset there.
            reward: ``[B]`` the reward the previous action earned (0 at an episode
                start); memory torsos were trained seeing it. ``None`` counts as 0.
            deterministic: the greedy action (the mode, or the best Q-value);
                False samples from the policy's distribution (PPO, SAC).

        Returns:
            ``(action, carry)``; the action is the env's.
        """
        observation = jnp.asarray(observation, self.observation_space.dtype)
        single = observation.shape == tuple(self.observation_space.shape)
        if single:
            observation = observation[None]
        batch = observation.shape[0]
        start = jnp.broadcast_to(jnp.asarray(episode_start, bool), (batch,))
        reward = jnp.zeros((batch,), jnp.float32) if reward is None else reward
        reward = jnp.broadcast_to(jnp.asarray(reward, jnp.float32), (batch,))
        action, carry = self._act(
            self.params, key, observation, carry, start, reward, deterministic=deterministic
        )
        return (action[0] if single else action), carry

    def _act_batch(
        self,
        params: Any,
        key: jax.Array,
        observation: jax.Array,
        carry: PolicyCarry,
        start: jax.Array,
        reward: jax.Array,
        deterministic: bool,
    ) -> tuple[jax.Array, PolicyCarry]:
        previous = carry.previous_action
        reset = jnp.reshape(start, start.shape + (1,) * (previous.ndim - start.ndim))
        inputs = StepInput(
            observation=observation,
            episode_start=start,
            previous_action=jnp.where(reset, jnp.zeros_like(previous), previous),
            previous_reward=jnp.where(start, 0.0, reward),
        )
        torso, output = apply_network(self.network, params, inputs.with_time_axis(), carry.torso)
        if deterministic:
            action = self.agent._greedy_action(output)
        else:
            action = _sampled_action(self.agent, output, key)
        return self.agent._env_action(action), PolicyCarry(torso, action.astype(previous.dtype))

    def __repr__(self) -> str:
        return f"Policy({self.name})"


def _sampled_action(agent: Any, output: Any, key: jax.Array) -> jax.Array:
    """A sampled action from a distribution head, or a clear refusal for Q-values."""
    if not hasattr(output, "sample"):
        raise ValueError(
            f"{type(agent).__name__} acts greedily on its Q-values: deterministic=False "
            "samples from a policy distribution (PPO, SAC). Use deterministic=True."
        )
    greedy = agent._greedy_action(output)
    return output.sample(key)[:, 0].astype(greedy.dtype)
