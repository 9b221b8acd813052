"""The shared environment contract for the gymnasium backend."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase

# Pendulum never terminates, so an 8-step time limit truncates it exactly at 8 and 16.
PENDULUM_LIMIT = TruncationCase("gymnasium::Pendulum-v1", {"max_episode_steps": 8}, 8)


class TestGymnasiumContract(EnvironmentContract, AgentRunContract):
    """Box observations with a Discrete (CartPole) and a Box (Pendulum) action space."""

    env_ids = ("gymnasium::CartPole-v1", "gymnasium::Pendulum-v1")
    truncation_case = PENDULUM_LIMIT


class TestGymnasiumDiscreteObservationContract(EnvironmentContract, AgentRunContract):
    """Discrete observations; FrozenLake always starts in cell 0, whatever the key."""

    env_ids = ("gymnasium::FrozenLake-v1",)
    random_reset = False
    truncation_case = PENDULUM_LIMIT
