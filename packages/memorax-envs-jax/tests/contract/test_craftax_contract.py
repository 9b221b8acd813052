"""craftax passes the shared environment contract."""

from memorax.testing import EnvironmentContract, TruncationCase
from memorax_envs_jax.craftax import NAMESPACE


class TestCraftaxContract(EnvironmentContract):
    """Craftax-Classic only: each craftax id costs minutes of compiling on two cores."""

    env_ids = tuple(f"craftax::{env_id}" for env_id in NAMESPACE.contract_ids)
    # The player starts with 9 health and nothing can take it all in 6 steps.
    truncation_case = TruncationCase(
        "craftax::Craftax-Classic-Symbolic-v1", {"max_timesteps": 6}, 6
    )
