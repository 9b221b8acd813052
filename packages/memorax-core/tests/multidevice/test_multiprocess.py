"""Data-parallel training across two processes (``jax.distributed`` on the CPU, gloo
collectives) gives the result of the same training in one process.

Two worker processes (``multiprocess_worker.py``) each see two simulated CPU devices;
together they train one PPO over all four, as a two-host job would. The test process
trains the same config, with the same keys, on one device.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from .multiprocess_worker import NUM_PROCESSES, make_agent, trained
from .sharded_comparison import ATOL, NUM_DEVICES, RTOL

WORKER = Path(__file__).with_name("multiprocess_worker.py")
TIMEOUT_S = 300
"""A hung coordinator or collective fails the test instead of hanging CI."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """What each worker wrote, and the same training on one device in this process."""
    output = tmp_path_factory.mktemp("multiprocess")
    port = free_port()
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(process_id), str(port), str(output)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for process_id in range(NUM_PROCESSES)
    ]
    try:
        logs = [worker.communicate(timeout=TIMEOUT_S)[0] for worker in workers]
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
        logs = [worker.communicate()[0] for worker in workers]
        pytest.fail(f"workers still running after {TIMEOUT_S} s; their output:\n" + "\n".join(logs))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for process_id, (worker, log) in enumerate(zip(workers, logs, strict=True)):
        assert worker.returncode == 0, f"process {process_id} failed:\n{log}"
    results = [dict(np.load(output / f"process_{i}.npz")) for i in range(NUM_PROCESSES)]
    return results, trained(None)


def test_each_worker_saw_every_process_devices(runs):
    for result in runs[0]:
        assert result["layout"].tolist() == [NUM_PROCESSES, NUM_DEVICES, NUM_DEVICES // 2]


def test_both_processes_end_with_the_same_parameters(runs):
    first, second = runs[0]
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_two_processes_on_four_devices_train_what_one_device_trains(runs):
    results, reference = runs
    result = results[0]
    assert reference.keys() == result.keys() - {"layout"}
    for name, value in reference.items():
        np.testing.assert_allclose(result[name], value, rtol=RTOL, atol=ATOL, err_msg=name)
    # Training moved the parameters: the comparison is not of two inits.
    initial = jax.tree.leaves(make_agent(None).init(jax.random.key(0)).actor_params)
    moved = [np.abs(result[f"actor_params/{i}"] - np.asarray(leaf)).max()
             for i, leaf in enumerate(initial)]  # fmt: skip
    assert max(moved) > 1e-4
