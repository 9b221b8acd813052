"""craftax passes the shared environment contract."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase
from memorax_envs_jax.craftax import NAMESPACE


class TestCraftaxContract(EnvironmentContract, AgentRunContract):
    """Craftax-Classic only: each craftax id costs minutes of compiling on two cores."""

    env_ids = tuple(f"craftax::{env_id}" for env_id in NAMESPACE.contract_ids)
    # The player starts with 9 health and nothing can take it all in 6 steps.
    # Every id runs with that time limit, so the time-limit check reuses the
    # compiled rollout instead of compiling craftax once more.
    make_kwargs = {env_id: {"max_timesteps": 6} for env_id in env_ids}  # noqa: RUF012
    truncation_case = TruncationCase(env_ids[0], {"max_timesteps": 6}, 6)
