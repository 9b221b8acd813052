"""navix passes the shared environment contract."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase
from memorax_envs_jax.navix import NAMESPACE


class TestNavixContract(EnvironmentContract, AgentRunContract):
    """A random-start room and a room whose obstacles move at random every step."""

    env_ids = tuple(f"navix::{env_id}" for env_id in NAMESPACE.contract_ids)
    # From (1, 1) facing east the goal at (3, 3) is at least five actions away,
    # so no action sequence ends a 4-step episode early.
    truncation_case = TruncationCase("navix::Navix-Empty-5x5-v0", {"max_steps": 4}, 4)
