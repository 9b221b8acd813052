"""Training algorithms: each a ``Config``, a ``State`` pytree and an agent with
``init / train / evaluate``, built on one skeleton (:class:`Agent`).

The shared parts are grouped by theme: :mod:`~memorax.algorithms.agent` (the
skeleton), :mod:`~memorax.algorithms.acting` (rollouts and evaluation
episodes), :mod:`~memorax.algorithms.checks` (configs and argument checks),
:mod:`~memorax.algorithms.returns` (GAE, Q(lambda), n-step targets, value
rescaling), :mod:`~memorax.algorithms.q_learning` (epsilon-greedy value agents),
:mod:`~memorax.algorithms.on_policy` and :mod:`~memorax.algorithms.replay`
(the two families' update loops), :mod:`~memorax.algorithms.metrics` and
:mod:`~memorax.algorithms.data_parallel`, :mod:`~memorax.algorithms.non_finite`
(training stops at the first NaN/inf parameter) and :mod:`~memorax.algorithms.sweep`
(hyperparameter settings x seeds in one program).
"""

from memorax.algorithms.acting import EvaluationResult, StepInput, Transition, run_episodes
from memorax.algorithms.agent import Agent
from memorax.algorithms.checks import AgentConfig
from memorax.algorithms.dqn import DQN, DQN_METRIC_NAMES, DQNConfig, DQNState
from memorax.algorithms.metrics import MetricsCallback
from memorax.algorithms.non_finite import NonFiniteError
from memorax.algorithms.ppo import METRIC_NAMES, PPO, PPOConfig, PPOState
from memorax.algorithms.pqn import PQN, PQN_METRIC_NAMES, PQNConfig, PQNState
from memorax.algorithms.q_learning import epsilon_greedy, linear_epsilon
from memorax.algorithms.r2d2 import (
    R2D2,
    R2D2_METRIC_NAMES,
    R2D2Config,
    R2D2State,
    sequence_priorities,
)
from memorax.algorithms.returns import (
    generalized_advantage_estimation,
    inverse_value_rescaling,
    n_step_targets,
    q_lambda_returns,
    value_rescaling,
)
from memorax.algorithms.sac import SAC, SAC_METRIC_NAMES, SACConfig, SACState
from memorax.algorithms.sweep import Sweep, grid

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
    "Agent",
    "AgentConfig",
    "Sweep",
    "DQNConfig",
    "DQNState",
    "EvaluationResult",
    "MetricsCallback",
    "NonFiniteError",
    "PPOConfig",
    "PPOState",
    "PQNConfig",
    "PQNState",
    "R2D2Config",
    "R2D2State",
    "SACConfig",
    "SACState",
    "StepInput",
    "Transition",
    "epsilon_greedy",
    "generalized_advantage_estimation",
    "grid",
    "inverse_value_rescaling",
    "linear_epsilon",
    "n_step_targets",
    "q_lambda_returns",
    "run_episodes",
    "sequence_priorities",
    "value_rescaling",
]
