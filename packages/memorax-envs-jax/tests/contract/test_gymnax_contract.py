"""gymnax passes the shared environment contract."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase


class TestGymnaxContract(EnvironmentContract, AgentRunContract):
    """Discrete (CartPole), continuous (Pendulum) and memory (MemoryChain) tasks."""

    env_ids = ("gymnax::CartPole-v1", "gymnax::Pendulum-v1", "gymnax::MemoryChain-bsuite")
    make_kwargs = {  # noqa: RUF012
        "gymnax::MemoryChain-bsuite": {"memory_length": 4},
        "gymnax::Pendulum-v1": {"max_steps_in_episode": 6},
    }
    # Pendulum never terminates, so random actions always reach the limit.
    truncation_case = TruncationCase("gymnax::Pendulum-v1", {"max_steps_in_episode": 6}, 6)
