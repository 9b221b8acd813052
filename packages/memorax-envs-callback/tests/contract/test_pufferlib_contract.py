"""The shared environment contract for the PufferLib backend, on both vector backends."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase


class TestPufferLibSerialContract(EnvironmentContract, AgentRunContract):
    """gymnasium ids through PufferLib's emulation, stepped in this process."""

    env_ids = ("pufferlib::CartPole-v1", "pufferlib::Pendulum-v1")
    truncation_case = TruncationCase("pufferlib::Pendulum-v1", {"max_episode_steps": 8}, 8)


class TestPufferLibMultiprocessingContract(EnvironmentContract, AgentRunContract):
    """The same envs stepped by PufferLib worker processes."""

    env_ids = ("pufferlib::CartPole-v1",)
    make_kwargs = {  # noqa: RUF012 - read-only class attribute
        "pufferlib::CartPole-v1": {"backend": "Multiprocessing", "num_workers": 1}
    }
    truncation_case = TruncationCase(
        "pufferlib::Pendulum-v1",
        {"max_episode_steps": 8, "backend": "Multiprocessing", "num_workers": 1},
        8,
    )
