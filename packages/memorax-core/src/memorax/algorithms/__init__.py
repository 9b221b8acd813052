"""Training algorithms: each a ``Config``, a ``State`` pytree and an agent with
``init / train / evaluate``."""

from memorax.algorithms.evaluation import EvaluationResult, run_episodes
from memorax.algorithms.gae import generalized_advantage_estimation
from memorax.algorithms.metrics_stream import MetricsCallback
from memorax.algorithms.ppo import METRIC_NAMES, PPO, PPOConfig, PPOState

__all__ = [
    "METRIC_NAMES",
    "PPO",
    "EvaluationResult",
    "MetricsCallback",
    "PPOConfig",
    "PPOState",
    "generalized_advantage_estimation",
    "run_episodes",
]
