"""The shared contract test suite every environment backend runs.

A backend opts in from its own tests by subclassing
:class:`EnvironmentContract` and naming the env ids it supports::

    from memorax.testing import EnvironmentContract, TruncationCase

    class TestNavixContract(EnvironmentContract):
        env_ids = ("navix::Navix-Empty-5x5-v0",)
        truncation_case = TruncationCase("navix::Navix-Empty-16x16-v0", {"max_steps": 8}, 8)

Run it with pytest; every failure names the contract point and the env id.
A short agent run on top of the backend is opt-in: add
:class:`AgentRunContract` to the bases.
"""

from memorax.testing.agent_run import AgentRunContract
from memorax.testing.contract import ContractViolation, EnvironmentContract, TruncationCase

__all__ = ["AgentRunContract", "ContractViolation", "EnvironmentContract", "TruncationCase"]
