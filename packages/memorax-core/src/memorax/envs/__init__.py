"""The environment contract, spaces, registry and generic wrappers."""

from memorax.envs.action_checks import InvalidActionError
from memorax.envs.capabilities import HOST_CALLBACK, JAX_NATIVE, Capabilities
from memorax.envs.environment import (
    Environment,
    RenderingNotSupportedError,
    StepResult,
    Wrapper,
)
from memorax.envs.episode_statistics import EpisodeStatistics, EpisodeStatisticsState
from memorax.envs.host_callbacks import HostBackendUnavailableError, require_host_backend
from memorax.envs.pomdp import FlickerObservation, MaskObservation, NoisyObservation
from memorax.envs.registry import (
    BackendNotInstalledError,
    EnvironmentKwargsError,
    Namespace,
    UnknownEnvironmentError,
    UnknownNamespaceError,
    install_command,
    make,
    registered_namespaces,
    unexpected_kwargs_error,
)
from memorax.envs.spaces import Box, Discrete, MultiDiscrete, Space
from memorax.envs.vmapped import VmappedEnvironment

__all__ = [
    "HOST_CALLBACK",
    "JAX_NATIVE",
    "BackendNotInstalledError",
    "Box",
    "Capabilities",
    "Discrete",
    "Environment",
    "EnvironmentKwargsError",
    "EpisodeStatistics",
    "EpisodeStatisticsState",
    "FlickerObservation",
    "HostBackendUnavailableError",
    "InvalidActionError",
    "MaskObservation",
    "MultiDiscrete",
    "Namespace",
    "NoisyObservation",
    "Space",
    "RenderingNotSupportedError",
    "StepResult",
    "UnknownEnvironmentError",
    "UnknownNamespaceError",
    "VmappedEnvironment",
    "Wrapper",
    "install_command",
    "make",
    "registered_namespaces",
    "require_host_backend",
    "unexpected_kwargs_error",
]
