"""Training algorithms: each a ``Config``, a ``State`` pytree and an agent with
``init / train / evaluate``."""

from memorax.algorithms.dqn import DQN, DQN_METRIC_NAMES, DQNConfig, DQNState, n_step_targets
from memorax.algorithms.epsilon_greedy import epsilon_greedy, linear_epsilon
from memorax.algorithms.evaluation import EvaluationResult, run_episodes
from memorax.algorithms.gae import generalized_advantage_estimation
from memorax.algorithms.metrics_stream import MetricsCallback
from memorax.algorithms.ppo import METRIC_NAMES, PPO, PPOConfig, PPOState
from memorax.algorithms.pqn import PQN, PQN_METRIC_NAMES, PQNConfig, PQNState
from memorax.algorithms.q_lambda import q_lambda_returns
from memorax.algorithms.r2d2 import (
    R2D2,
    R2D2_METRIC_NAMES,
    R2D2Config,
    R2D2State,
    sequence_priorities,
)
from memorax.algorithms.sac import SAC, SAC_METRIC_NAMES, SACConfig, SACState
from memorax.algorithms.value_rescaling import inverse_value_rescaling, value_rescaling

__all__ = [
    "DQN",
    "DQN_METRIC_NAMES",
    "METRIC_NAMES",
    "PPO",
    "PQN",
    "PQN_METRIC_NAMES",
    "R2D2",
    "R2D2_METRIC_NAMES",
    "SAC",
    "SAC_METRIC_NAMES",
    "DQNConfig",
    "DQNState",
    "EvaluationResult",
    "MetricsCallback",
    "PPOConfig",
    "PPOState",
    "PQNConfig",
    "PQNState",
    "R2D2Config",
    "R2D2State",
    "SACConfig",
    "SACState",
    "epsilon_greedy",
    "generalized_advantage_estimation",
    "inverse_value_rescaling",
    "linear_epsilon",
    "n_step_targets",
    "q_lambda_returns",
    "run_episodes",
    "sequence_priorities",
    "value_rescaling",
]
