"""Run inside a fresh env made by one install line: is exactly what it promises there?

    python tests/install/check_install.py '{"memorax-envs-jax": ["gymnax"]}'

The argument maps each Memorax distribution the line names to the extras it
asks for. The check: those distributions are installed; every backend an
extra promises makes an env that resets and steps; every other backend's
library is absent and its namespace answers with its install line (gymnasium
may come along: other backends depend on it); each
logger or video extra's library is installed (and ``tensorboard`` has its command); no
CUDA build of jax came along.
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

# backend -> (distribution, libraries only its extra brings, an env id to make). gymnasium
# has none of its own: gymnax, ale-py and pufferlib-core all depend on it.
BACKENDS = {
    "gymnax": ("memorax-envs-jax", ("gymnax",), "gymnax::CartPole-v1"),
    "craftax": ("memorax-envs-jax", ("craftax",), "craftax::Craftax-Classic-Symbolic-v1"),
    "navix": ("memorax-envs-jax", ("navix",), "navix::Navix-Empty-5x5-v0"),
    "xminigrid": ("memorax-envs-jax", ("xminigrid",), "xminigrid::MiniGrid-MemoryS8"),
    "gymnasium": ("memorax-envs-callback", (), "gymnasium::CartPole-v1"),
    "ale": ("memorax-envs-callback", ("ale-py",), "ale::Pong"),
    "pufferlib": ("memorax-envs-callback", ("pufferlib-core", "torch"), "pufferlib::CartPole-v1"),
}
# Extras that are not backends -> the libraries each must install.
LIBRARY_EXTRAS = {
    "tensorboard": ("tensorboardX", "tensorboard"),
    "wandb": ("wandb",),
    "video": ("imageio", "imageio-ffmpeg", "pygame"),
}
CUDA_JAX = ("jax-cuda12-plugin", "jax-cuda12-pjrt")


def installed(name: str) -> bool:
    """Whether the distribution ``name`` is installed in this env."""
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def promised_backends(requested: dict[str, list[str]]) -> set[str]:
    """The backends the requested extras install (``all``: every backend of the package)."""
    backends = set()
    for dist, extras in requested.items():
        for extra in extras:
            if extra == "all":
                backends |= {name for name, (owner, *_) in BACKENDS.items() if owner == dist}
            elif extra in BACKENDS:
                backends.add(extra)
    return backends


def check(requested: dict[str, list[str]]) -> list[str]:
    """Everything wrong with this env for ``requested``; empty when all is as promised."""
    import jax

    from memorax.envs import BackendNotInstalledError, make

    failures = []
    for dist in {"memorax-core", *requested}:
        if not installed(dist):
            failures.append(f"{dist} is not installed")
    backends = promised_backends(requested)
    libraries_of_promised = {lib for b in backends for lib in BACKENDS[b][1]}
    for backend, (owner, libraries, env_id) in BACKENDS.items():
        if backend in backends:
            env, params = make(env_id, num_envs=2)
            if backend != "craftax":  # craftax's world generation compiles for minutes
                _, state = env.reset(jax.random.key(0), params)
                keys = jax.random.split(jax.random.key(1), 2)
                action = jax.vmap(env.action_space.sample)(keys)
                env.step(jax.random.key(2), state, action, params)
            continue
        for library in libraries:
            if installed(library) and library not in libraries_of_promised:
                failures.append(f"{library} is installed, but no extra of this line asks for it")
        try:
            make(env_id)
        except BackendNotInstalledError as error:
            if f'pip install "{owner}[{backend}]"' not in str(error):
                failures.append(f"make({env_id!r}) does not name its install line: {error}")
        else:
            if libraries:  # only gymnasium may come along, as another backend's dependency
                failures.append(f"make({env_id!r}) worked, but its backend was not promised")
    all_extras = {extra for extras in requested.values() for extra in extras}
    for extra, libraries in LIBRARY_EXTRAS.items():
        for library in libraries:
            if extra in all_extras and not installed(library):
                failures.append(f"the {extra} extra did not install {library}")
    commands = str(Path(sys.executable).parent)
    if "tensorboard" in all_extras and shutil.which("tensorboard", path=commands) is None:
        failures.append("the tensorboard extra installed no `tensorboard` command")
    if "testing" in all_extras:
        import memorax.testing  # noqa: F401
    for cuda in CUDA_JAX:
        if installed(cuda):
            failures.append(f"{cuda} is installed: no CPU install line may bring CUDA jax")
    return failures


if __name__ == "__main__":
    requested = json.loads(sys.argv[1])
    failures = check(requested)
    if failures:
        print("install check failed:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"install check: {json.dumps(requested)} gives what it promises")
