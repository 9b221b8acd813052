"""Every check a developer or CI runs. `nox` alone runs the CPU sessions.

Each session installs exactly what it needs from the workspace lock
(`uv sync --locked` into the session's own virtualenv), so a stale
`uv.lock` fails instead of resolving something new.

    nox                                                # everything CI runs
    nox -s lint typecheck
    nox -s "tests(package='memorax-core')"
    nox -s "contract(backend='navix', device='cpu')"
    nox -s "contract(backend='navix', device='gpu')"   # needs a visible GPU
    nox -s install docs examples
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ("memorax-core", "memorax-envs-jax", "memorax-envs-callback")
BACKENDS = {
    "gymnax": "memorax-envs-jax",
    "craftax": "memorax-envs-jax",
    "navix": "memorax-envs-jax",
    "gymnasium": "memorax-envs-callback",
    "ale": "memorax-envs-callback",
    "pufferlib": "memorax-envs-callback",
}
# Backends the scripts in examples/ train on.
EXAMPLE_BACKENDS = ("gymnax", "craftax", "navix", "ale", "pufferlib")
# Extras of each package that its own unit tests need (cuda never: CPU CI).
TEST_EXTRAS = {
    "memorax-core": (),
    "memorax-envs-jax": ("gymnax", "craftax", "navix"),
    "memorax-envs-callback": ("gymnasium", "ale", "pufferlib"),
}

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "lock",
    "lint",
    "typecheck",
    *(f"tests(package='{package}')" for package in PACKAGES),
    *(f"contract(backend='{backend}', device='cpu')" for backend in BACKENDS),
    "multidevice",
    "install",
    "docs",
    "examples",
]


def sync(session: nox.Session, *args: str) -> None:
    """Installs from uv.lock into the session's virtualenv, failing on a stale lock."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def pytest(session: nox.Session, *paths: str, env: dict[str, str] | None = None) -> None:
    """Runs pytest; pytest itself fails (exit 5) when it collects no test."""
    session.run("python", "-m", "pytest", *paths, *session.posargs, env=env or {})


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """uv.lock matches every pyproject.toml."""
    session.run("uv", "lock", "--check", external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    sync(session, "--only-group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the three packages' sources."""
    # Every optional library installed, so mypy checks our calls into them.
    sync(
        session,
        "--all-packages",
        *("--extra", "all", "--extra", "tensorboard", "--extra", "wandb", "--extra", "testing"),
        "--group",
        "typecheck",
    )
    session.run("mypy")


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """A package's own tests, in an env with only that package and what it needs."""
    extras = [arg for extra in TEST_EXTRAS[package] for arg in ("--extra", extra)]
    sync(session, "--package", package, "--group", "test", *extras)
    tests_dir = f"packages/{package}/tests"
    # Contract tests run per backend in `contract`, multi-device tests in `multidevice`.
    # Two workers: XLA compiles one program on one core, and compiling is most of
    # the time; whole files go to one worker so module fixtures compile once.
    pytest(
        session,
        tests_dir,
        f"--ignore={tests_dir}/contract",
        f"--ignore={tests_dir}/multidevice",
        "--numprocesses=2",
        "--dist=loadfile",
    )


@nox.session
def multidevice(session: nox.Session) -> None:
    """Data-parallel training on 4 simulated CPU devices."""
    sync(session, "--package", "memorax-core", "--group", "test")
    # Compiling dominates here too: two workers, whole files each (see `tests`).
    pytest(
        session,
        "packages/memorax-core/tests/multidevice",
        "--numprocesses=2",
        "--dist=loadfile",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"},
    )


@nox.session
@nox.parametrize("device", ["cpu", "gpu"])
@nox.parametrize("backend", list(BACKENDS))
def contract(session: nox.Session, backend: str, device: str) -> None:
    """The shared contract suite for one backend, with only that backend's extra."""
    package = BACKENDS[backend]
    extras = ["--extra", backend]
    if device == "gpu":
        # The CUDA wheels are a dependency group (see the envs packages' pyproject.toml).
        extras += ["--group", "cuda"]
    sync(session, "--package", package, "--group", "test", *extras)
    env = {"JAX_PLATFORMS": "cuda,cpu" if device == "gpu" else "cpu"}
    if device == "gpu":
        session.run(
            "python",
            "-c",
            "import jax, sys; devices = jax.devices(); "
            "sys.exit(0) if devices and devices[0].platform == 'gpu' else "
            "sys.exit('contract(device=gpu): no GPU visible to JAX (devices: '"
            " + str(devices) + '). Run this session on a machine with a CUDA GPU;'"
            " ' it never falls back to the CPU.')",
            env=env,
        )
    pytest(session, f"packages/{package}/tests/contract/test_{backend}_contract.py", env=env)


@nox.session
def expensive(session: nox.Session) -> None:
    """Tests too slow for CI's two cores (e.g. craftax's pixel renderers): not run by default."""
    sync(session, "--all-packages", "--extra", "all", "--group", "test")
    pytest(session, "packages", "tests/examples", "-m", "expensive")


@nox.session(venv_backend="none")
def install(session: nox.Session) -> None:
    """Every install line of the README and docs, each in a fresh env: it installs, and
    the env holds what the line promises and no other backend (index lines run
    against wheels built from this tree)."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), external=True)
    runner = "tests/install/run_install_lines.py"
    session.run("python", runner, "--wheels", str(dist), external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """The docs build with warnings as errors, and every code block in them runs."""
    sync(
        session,
        "--all-packages",
        "--extra",
        "gymnax",
        "--extra",
        "gymnasium",
        "--group",
        "docs",
        "--group",
        "test",
    )
    pytest(session, "tests/docs")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        os.fspath(ROOT / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def examples(session: nox.Session) -> None:
    """Every script in examples/ trains and evaluates with a tiny budget."""
    extras = [arg for backend in EXAMPLE_BACKENDS for arg in ("--extra", backend)]
    sync(session, "--all-packages", *extras, "--group", "test")
    # One script per test; compiling dominates, so two workers halve the time.
    pytest(session, "tests/examples", "--numprocesses=2")
