"""Memorax: memory-augmented reinforcement learning in JAX.

``memorax.make`` builds environments (see :mod:`memorax.envs`); agents live in
:mod:`memorax.algorithms`, networks and memory models in
:mod:`memorax.networks`.
"""

from memorax.algorithms import PPO, PPOConfig, PPOState
from memorax.envs import make

__version__ = "0.1.0"

__all__ = ["PPO", "PPOConfig", "PPOState", "__version__", "make"]
