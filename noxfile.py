"""Every check a developer or CI runs. `nox` alone runs the CPU sessions.

Each session installs exactly what it needs from the workspace lock
(`uv sync --locked` into the session's own virtualenv), so a stale
`uv.lock` fails instead of resolving something new.

    nox                                                # everything CI runs
    nox -s lint typecheck
    nox -s "tests-3.11(package='memorax-core')"
    nox -s tests -p 3.13                               # every package on Python 3.13
    nox -s "contract-3.11(backend='navix', device='cpu')"
    nox -s "contract-3.12(backend='navix', device='gpu')"  # needs a visible GPU
    nox -s install docs examples
    nox -s deps                                        # newest and lowest allowed versions

`nox` alone runs the Python 3.11 sessions; the other Pythons and `deps` run
in the GitHub workflow's matrix (.github/workflows/ci.yml), where each is a
job of its own, because on one 2-core machine they would triple CI's time.

Every pytest run shares one JAX compilation cache under .nox/ (a fresh
clone starts it empty), so a program that several tests or sessions build
identically is compiled once; few are, so on a fresh clone it saves little
(measured: under a minute of CI's 21), more on a rerun.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# The Pythons the packages support; the first is the one `nox` runs by default.
PYTHONS = ("3.11", "3.12", "3.13")
DEFAULT_PYTHON = PYTHONS[0]
JAX_CACHE = ROOT / ".nox" / "jax-compilation-cache"
# Most checks compile hundreds of tiny programs, where compiling is most of the
# time: XLA's backend optimisation off cuts their time by about a quarter. The
# same programs run (results differ by float32 rounding, ~1e-7). The learning
# checks (pytest mark `slow`), where running is most of the time, and `deps`
# keep XLA's defaults, so CI still runs users' code as users compile it.
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"
PACKAGES = ("memorax-core", "memorax-envs-jax", "memorax-envs-callback")
BACKENDS = {
    "gymnax": "memorax-envs-jax",
    "craftax": "memorax-envs-jax",
    "navix": "memorax-envs-jax",
    "xminigrid": "memorax-envs-jax",
    "gymnasium": "memorax-envs-callback",
    "ale": "memorax-envs-callback",
    "pufferlib": "memorax-envs-callback",
}
# Backends the scripts in examples/ train on.
EXAMPLE_BACKENDS = ("gymnax", "craftax", "navix", "ale", "pufferlib")
# Extras of each package that its own unit tests need (cuda never: CPU CI).
TEST_EXTRAS = {
    "memorax-core": (),
    "memorax-envs-jax": ("gymnax", "craftax", "navix", "xminigrid"),
    "memorax-envs-callback": ("gymnasium", "ale", "pufferlib", "video"),
}

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "lock",
    "lint",
    "typecheck",
    *(f"tests-{DEFAULT_PYTHON}(package='{package}')" for package in PACKAGES),
    *(f"contract-{DEFAULT_PYTHON}(backend='{backend}', device='cpu')" for backend in BACKENDS),
    "multidevice",
    "faults",
    "install",
    "docs",
    "examples",
]


def _let_pyenv_shims_serve_every_python() -> None:
    """Lets uv find every pyenv-installed Python, not only the selected one.

    pyenv's `python3.12` shim fails unless 3.12 is among the selected versions,
    so on a machine whose Pythons come from pyenv, `tests-3.12` could not find
    its interpreter. The other installed versions are appended to the selected
    ones (PYENV_VERSION, which pyenv's own shims set, or `pyenv version-name`),
    which changes nothing for `python` itself.
    """
    if shutil.which("pyenv") is None:
        return

    def pyenv(*args: str) -> list[str]:
        result = subprocess.run(["pyenv", *args], capture_output=True, text=True, check=False)
        return result.stdout.split() if result.returncode == 0 else []

    selected = os.environ.get("PYENV_VERSION") or ":".join(pyenv("version-name"))
    current = [version for version in selected.split(":") if version]
    installed = [v for v in pyenv("versions", "--bare", "--skip-aliases") if "/" not in v]
    if current and installed:
        others = [version for version in installed if version not in current]
        os.environ["PYENV_VERSION"] = ":".join([*current, *others])


_let_pyenv_shims_serve_every_python()


def sync(session: nox.Session, *args: str) -> None:
    """Installs from uv.lock into the session's virtualenv, failing on a stale lock."""
    # The session's own interpreter, so tests-3.13 syncs Python 3.13's resolution.
    interpreter = os.path.join(session.bin, "python")
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        "--python",
        interpreter,
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def pytest(
    session: nox.Session,
    *paths: str,
    env: dict[str, str] | None = None,
) -> None:
    """Runs pytest with the shared JAX compilation cache; pytest itself fails (exit 5)
    when it collects no test. The 30 slowest tests are printed, to see where time goes."""
    cache = {"JAX_COMPILATION_CACHE_DIR": os.fspath(JAX_CACHE)}
    session.run(
        "python",
        "-m",
        "pytest",
        *paths,
        "--durations=30",
        *session.posargs,
        env={**cache, **(env or {})},
    )


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


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """A package's own tests, in an env with only that package and what it needs."""
    extras = [arg for extra in TEST_EXTRAS[package] for arg in ("--extra", extra)]
    sync(session, "--package", package, "--group", "test", *extras)
    tests_dir = f"packages/{package}/tests"
    # Contract tests run per backend in `contract`, multi-device tests in `multidevice`.
    # Two workers: XLA compiles one program on one core, and compiling is most of
    # the time; whole files go to one worker so module fixtures compile once.
    selection = [
        tests_dir,
        f"--ignore={tests_dir}/contract",
        f"--ignore={tests_dir}/multidevice",
        "--numprocesses=2",
    ]
    pytest(
        session,
        *selection,
        "--dist=loadfile",
        "-m",
        "not slow and not expensive",
        env={"XLA_FLAGS": FAST_COMPILE_FLAG},
    )
    # The learning checks, with XLA's defaults: running, not compiling, is their time.
    # Test by test over the workers, since a few files hold them all. Only packages
    # that have some (starting pytest costs seconds even when it collects nothing).
    if _marks_tests(ROOT / tests_dir, "slow"):
        pytest(session, *selection, "--dist=load", "-m", "slow and not expensive")


def _marks_tests(tests_dir: Path, mark: str) -> bool:
    """Whether any test module under ``tests_dir`` uses ``pytest.mark.<mark>``."""
    return any(f"pytest.mark.{mark}" in path.read_text() for path in tests_dir.rglob("test_*.py"))


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
        env={
            "XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {FAST_COMPILE_FLAG}",
            "JAX_PLATFORMS": "cpu",
        },
    )


@nox.session(python=PYTHONS)
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
    if device == "cpu":
        env["XLA_FLAGS"] = FAST_COMPILE_FLAG
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


def _declared_requirements() -> list[str]:
    """Every requirement the three packages declare, extras included (not each other).

    uv's `lowest-direct` lowers only the requirements named on its command line,
    not those of a wheel it installs, so they are named there.
    """
    requirements: list[str] = []
    for package in PACKAGES:
        with (ROOT / "packages" / package / "pyproject.toml").open("rb") as file:
            project = tomllib.load(file)["project"]
        declared = [*project.get("dependencies", [])]
        for extra in project.get("optional-dependencies", {}).values():
            declared += extra
        requirements += [r for r in declared if not r.startswith("memorax")]
    return sorted(set(requirements))


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("resolution", ["highest", "lowest-direct"])
def deps(session: nox.Session, resolution: str) -> None:
    """The built wheels with the newest (`highest`) or the lowest declared
    (`lowest-direct`) version of every dependency, outside the lock: each backend's
    contract suite on its first env id (with its short PPO run), the vmapped-init
    test, and a short `memorax train`."""
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), external=True)
    wheels = {name: next(dist.glob(name.replace("-", "_") + "-*.whl")) for name in PACKAGES}
    session.install(
        "--resolution",
        resolution,
        os.fspath(wheels["memorax-core"]) + "[testing]",
        os.fspath(wheels["memorax-envs-jax"]) + "[all]",
        os.fspath(wheels["memorax-envs-callback"]) + "[all]",
        *_declared_requirements(),
        # The test tools are not what this checks: their newest in both.
        "hypothesis>=6.100",
    )
    # What was resolved, in the log: the versions this run vouches for.
    session.run("uv", "pip", "freeze", external=True)
    checks = [
        *(
            f"packages/{package}/tests/contract/test_{backend}_contract.py"
            for backend, package in BACKENDS.items()
        ),
        "packages/memorax-core/tests/networks/test_vmapped_init_does_not_hang.py",
    ]
    # Run from a folder outside the tree, so the installed wheels are what is imported.
    tree = os.fspath(ROOT)
    with session.chdir(session.create_tmp()):
        pytest(
            session,
            *(os.path.join(tree, path) for path in checks),
            f"--rootdir={tree}",
            env={"MEMORAX_CONTRACT_MAX_ENV_IDS": "1", "JAX_PLATFORMS": "cpu"},
        )
        session.run(
            "memorax",
            "train",
            "--algo",
            "ppo",
            "--env",
            "gymnax::CartPole-v1",
            "--total-steps",
            "4096",
            "--seeds",
            "2",
            "--out",
            "deps-ppo-run",
            env={"JAX_PLATFORMS": "cpu"},
        )


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
    # Each group of blocks is a test of its own: two workers halve the time.
    pytest(session, "tests/docs", "--numprocesses=2", env={"XLA_FLAGS": FAST_COMPILE_FLAG})
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        os.fspath(ROOT / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def faults(session: nox.Session) -> None:
    """Faults a long run meets (tests/faults): NaN updates, host envs that raise, SIGKILL
    during checkpoint writes, wrong or damaged checkpoints, a full disk, and a soak."""
    extras = [arg for extra in ("gymnax", "gymnasium", "pufferlib") for arg in ("--extra", extra)]
    sync(session, "--all-packages", *extras, "--group", "test")
    # Each test runs `memorax train` in subprocesses that compile their own programs (with
    # XLA's defaults, as users compile them); two workers use both cores.
    pytest(session, "tests/faults", "--numprocesses=2")


@nox.session
def examples(session: nox.Session) -> None:
    """Every script in examples/ trains and evaluates with a tiny budget."""
    extras = [arg for backend in EXAMPLE_BACKENDS for arg in ("--extra", backend)]
    sync(session, "--all-packages", *extras, "--group", "test")
    # One script per test; compiling dominates, so two workers halve the time.
    pytest(session, "tests/examples", "--numprocesses=2", env={"XLA_FLAGS": FAST_COMPILE_FLAG})
