"""CPU environment backends for Memorax, bridged into jitted JAX (gymnasium, ALE, PufferLib).

Importing this package imports no backend library; ``memorax.envs.make`` loads
``memorax_envs_callback.gymnasium``, ``.ale`` or ``.pufferlib`` through entry points.
"""

from memorax_envs_callback import small_random_draws
from memorax_envs_callback.bridge import (
    CallbackEnvironment,
    CallbackState,
    CallbackVmapError,
    HostEnvironmentError,
    HostStep,
    HostVectorEnv,
    StaleEnvironmentStateError,
)

# Before any program that steps a bridge is lowered: see small_random_draws.
small_random_draws.install()

__version__ = "0.1.0"

__all__ = [
    "CallbackEnvironment",
    "CallbackState",
    "CallbackVmapError",
    "HostEnvironmentError",
    "HostStep",
    "HostVectorEnv",
    "StaleEnvironmentStateError",
    "__version__",
]
