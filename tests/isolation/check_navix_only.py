"""Run inside a fresh env holding only memorax-core and memorax-envs-jax[navix] wheels.

Checks that the navix extra pulls in navix and core and nothing of any other
backend, that navix envs can be made, and that every other namespace answers
with the exact install command.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution

import jax

from memorax.envs import BackendNotInstalledError, make

OTHER_BACKENDS = ("gymnax", "craftax", "gymnasium", "ale-py", "pufferlib-core", "torch")
failures: list[str] = []


def installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


for required in ("memorax-core", "memorax-envs-jax", "navix"):
    if not installed(required):
        failures.append(f"{required} should be installed by memorax-envs-jax[navix]")
for other in OTHER_BACKENDS:
    if installed(other):
        failures.append(f"{other} was installed by memorax-envs-jax[navix]; it must not be")
if installed("memorax-envs-callback"):
    failures.append("memorax-envs-callback must not be installed")

env, params = make("navix::Navix-Empty-5x5-v0", num_envs=2)
observation, _ = env.reset(jax.random.key(0), params)
if observation.shape[0] != 2:
    failures.append(f"navix env gave observations of shape {observation.shape}")

expected_hints = {
    "gymnasium::CartPole-v1": 'pip install "memorax-envs-callback[gymnasium]"',
    "ale::Pong": 'pip install "memorax-envs-callback[ale]"',
    "pufferlib::CartPole-v1": 'pip install "memorax-envs-callback[pufferlib]"',
    "gymnax::CartPole-v1": 'pip install "memorax-envs-jax[gymnax]"',
    "craftax::Craftax-Symbolic-v1": 'pip install "memorax-envs-jax[craftax]"',
}
for env_id, hint in expected_hints.items():
    try:
        make(env_id)
    except BackendNotInstalledError as error:
        if hint not in str(error):
            failures.append(f"make({env_id!r}) error lacks {hint!r}: {error}")
    else:
        failures.append(f"make({env_id!r}) should fail: its backend is not installed")

if failures:
    print("isolation check failed:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"isolation: navix only, {len(expected_hints)} install hints correct")
