"""What a recurrent off-policy agent stores per environment step."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class Transition:
    """One environment step, as stored for sequence (recurrent) replay.

    The buffers store any pytree; this is the layout the recurrent agents use.
    Shapes below are for one env and one step (what :meth:`SequenceBuffer.init`
    takes as its example); a batch for ``add`` has leading ``[num_envs, T]``
    axes and a sampled sequence leading ``[batch, sequence_length]`` axes.

    Attributes:
        observation: ``[*obs_shape]``, the observation the agent acted on.
        action: ``[]`` int (discrete) or ``[*action_shape]``.
        reward: ``[]`` float, received for ``action``.
        terminated: ``[]`` bool, the episode ended in a terminal state after
            ``action`` (do not bootstrap).
        truncated: ``[]`` bool, the episode was cut (time limit) after
            ``action`` (bootstrap from ``next_observation``).
        episode_start: ``[]`` bool, ``observation`` is the first of an episode
            (the previous step's ``terminated | truncated``, True after reset).
            Sampled sequences may cross episode boundaries; the learner resets
            its carry where this flag is True.
        carry: the recurrent carry the agent fed in when acting on
            ``observation`` (before it was updated by it), any pytree; ``None``
            for a memoryless network. The carry at a sequence's first step is
            the stored state a learner starts its unroll from.
        next_observation: ``[*obs_shape]``, the observation to bootstrap from
            after ``action``: the step's ``info["final_observation"]``, which is
            the next observation of the same episode even where the env
            auto-reset.
    """

    observation: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    episode_start: jax.Array
    carry: Any
    next_observation: jax.Array
