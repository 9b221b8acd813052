"""xminigrid passes the shared environment contract."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase
from memorax_envs_jax.xminigrid import NAMESPACE


class TestXminigridContract(EnvironmentContract, AgentRunContract):
    """A memory task (its own step) and a random-start room (xminigrid's generic step)."""

    env_ids = tuple(f"xminigrid::{env_id}" for env_id in NAMESPACE.contract_ids)
    # The Memory agent needs at least three actions to reach either object (walk to
    # the corridor's end, turn, step), so random actions cannot end a 2-step
    # episode early. The id runs with that limit throughout, so the time-limit
    # check reuses its compiled rollout; the room, whose goal is one step away
    # from some starts, covers terminations.
    make_kwargs = {"xminigrid::MiniGrid-MemoryS8": {"max_steps": 2}}  # noqa: RUF012
    truncation_case = TruncationCase("xminigrid::MiniGrid-MemoryS8", {"max_steps": 2}, 2)
