"""Runs every install line of the README and the docs, each in a fresh virtual env.

    python tests/install/run_install_lines.py --wheels dist/

A line is any ``pip install ...`` or ``uv sync ...`` in README.md or docs/
that names a Memorax package. Lines from a clone (``./packages/...``,
``uv sync --package ...``) run as written (pip's through ``uv pip``, the same
resolution, faster); lines for the package index run against the wheels
built from this tree (``--find-links``), as they will once published. After
each install, ``check_install.py`` checks the env holds what the line
promises and nothing of the other backends. Needs ``uv`` on the PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# `pip install ...` / `uv sync ...` up to the end of the code span, line, comment or `&&`.
LINE = re.compile(r"(?:pip install|uv sync)\b[^`\n#&]*")
PACKAGE = r"memorax-(?:core|envs-jax|envs-callback)"
PACKAGES = ("memorax-core", "memorax-envs-jax", "memorax-envs-callback")
REQUIREMENT = re.compile(rf"[\"']?(?:\./packages/)?({PACKAGE})(?:\[([a-z0-9,]+)\])?[\"']?")


def install_lines() -> dict[str, list[str]]:
    """Each distinct install line naming a Memorax package, with the files it appears in."""
    lines: dict[str, list[str]] = {}
    for path in DOCS:
        for match in LINE.finditer(path.read_text()):
            line = " ".join(match.group(0).split())
            if re.search(PACKAGE, line):
                lines.setdefault(line, []).append(str(path.relative_to(ROOT)))
    return lines


def requested(line: str) -> dict[str, list[str]]:
    """The Memorax distributions a line installs, each with the extras it asks for."""
    words = shlex.split(line)
    if words[:2] == ["uv", "sync"]:
        package = words[words.index("--package") + 1]
        extras = [words[i + 1] for i, word in enumerate(words) if word == "--extra"]
        return {package: extras}
    found: dict[str, list[str]] = {}
    for word in words[2:]:
        match = REQUIREMENT.fullmatch(word)
        if match:
            found[match.group(1)] = match.group(2).split(",") if match.group(2) else []
    return found


def run_line(line: str, wheels: Path, venv: Path) -> subprocess.CompletedProcess:
    """Installs ``line`` into the fresh env ``venv``; returns the install's result."""
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    words = shlex.split(line)
    env = dict(os.environ)
    if words[:2] == ["uv", "sync"]:
        command = ["uv", "sync", "--locked", *words[2:]]
        env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    elif any("./packages/" in word for word in words):
        command = ["uv", "pip", "install", "--python", str(python), *words[2:]]
    else:
        # The wheels are always version 0.1.0: refresh them, or uv may install a wheel of that
        # name and version it cached from an earlier build of this tree.
        refresh = [arg for name in PACKAGES for arg in ("--refresh-package", name)]
        command = ["uv", "pip", "install", "--python", str(python), "--find-links", str(wheels),
                   *refresh, *words[2:]]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


def all_extras_without_cuda() -> None:
    """``uv sync --all-packages --all-extras`` (what a developer types first) must not pull
    the CUDA build of jax onto a CPU machine: the CUDA wheels are a dependency group."""
    locked = subprocess.run(
        ["uv", "export", "--all-packages", "--all-extras", "--frozen", "--no-hashes"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cuda = sorted({line.split("==")[0] for line in locked.splitlines() if "jax-cuda" in line})
    if cuda:
        sys.exit(f"--all-extras installs the CUDA build of jax ({', '.join(cuda)}); keep it "
                 "in the `cuda` dependency group, not in an extra")  # fmt: skip
    print("--all-extras: no CUDA build of jax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="wheels built from this tree")
    parser.add_argument("--list", action="store_true", help="list the lines and exit")
    parser.add_argument("--jobs", type=int, default=2, help="lines installed at once")
    args = parser.parse_args()
    lines = install_lines()
    if args.list:
        for line, files in lines.items():
            print(f"{line}    ({', '.join(sorted(set(files)))})")
        return
    all_extras_without_cuda()
    failures = []
    with tempfile.TemporaryDirectory(prefix="memorax-install-") as scratch:

        def run_and_check(numbered: tuple[int, str]) -> tuple[str, float, bool, str]:
            index, line = numbered
            start = time.perf_counter()
            venv = Path(scratch) / f"env{index}"
            result = run_line(line, args.wheels.resolve(), venv)
            if result.returncode == 0:
                result = subprocess.run(
                    [str(venv / "bin" / "python"), str(ROOT / "tests/install/check_install.py"),
                     json.dumps(requested(line))],
                    cwd=scratch, capture_output=True, text=True,
                )  # fmt: skip
            shutil.rmtree(venv, ignore_errors=True)
            output = (result.stdout + result.stderr).strip()
            return line, time.perf_counter() - start, result.returncode == 0, output

        # Installing is mostly waiting on the disk, checking mostly one core: two at a time.
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for line, took, ok, output in pool.map(run_and_check, enumerate(lines)):
                files = ", ".join(sorted(set(lines[line])))
                status = "ok" if ok else "FAILED"
                print(f"{status:6s} {took:5.1f} s  {line}    ({files})", flush=True)
                if not ok:
                    failures.append(line)
                    print("       " + output.replace("\n", "\n       "))
    if failures:
        sys.exit(f"{len(failures)} of {len(lines)} install lines failed")
    print(f"all {len(lines)} install lines give what they promise")


if __name__ == "__main__":
    main()
