"""Fixtures for end-to-end tests of `python -m controller.run` on a real local Ray.

Every Ray started here gets its own short temporary directory (socket paths must stay under ~100 characters),
recorded in the environment variable ACTSEARCH_RAY_TMPDIR of every process it spawns. Teardown ends exactly
those processes, found by that marker, and never uses `ray stop`, which would stop every Ray on the machine
(other people's included). A driver killed with SIGKILL leaves Ray's agents behind; this cleans them up too.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_marked(marker: str) -> list[int]:
    """Return the ids of live processes started under the Ray temp dir `marker`: the environment variable
    ACTSEARCH_RAY_TMPDIR=marker, or (for Ray's agents, which get a filtered environment) a file open in it."""
    needle = f"ACTSEARCH_RAY_TMPDIR={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") or any(
                os.readlink(fd).startswith(marker + "/") for fd in (entry / "fd").iterdir()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def end_processes(marker: str) -> None:
    """Terminate, then kill, every process started under `marker`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_marked(marker)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while pids and time.time() < deadline and processes_marked(marker):
            time.sleep(0.2)


@pytest.fixture
def ray_env() -> Iterator[dict[str, str]]:
    """Return an environment for running the CLI with its own Ray temp dir; ends its Ray processes after."""
    temp = tempfile.mkdtemp(prefix="acts-", dir="/tmp")
    env = {**os.environ, "ACTSEARCH_RAY_TMPDIR": temp, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    yield env
    end_processes(temp)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[dict[str, str]]:
    """Start a real Ray head on loopback (its job server bound to 127.0.0.1) and return its addresses and env.

    The head uses token auth with a token of its own (`ray start` with RAY_AUTH_MODE=token needs one and, unlike a
    local `ray.init`, does not create ~/.ray/auth_token, so on a fresh machine it would not start).
    """
    temp = tempfile.mkdtemp(prefix="acth-", dir="/tmp")
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, "ACTSEARCH_RAY_TMPDIR": temp, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):  # RAY_AUTH_TOKEN would take precedence over the token file
        env.pop(name, None)
    try:
        for _attempt in range(3):  # a port picked free can be taken before Ray binds it: pick again
            port, dashboard, agent = free_port(), free_port(), free_port()
            # The job agent's HTTP port is fixed (52365) by default: another Ray on this machine (a search running
            # beside the tests) would leave this head without one ("No available agent to submit job").
            command = [RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus",
                       "2", "--temp-dir", temp, "--include-dashboard=true", "--dashboard-host", "127.0.0.1",
                       "--dashboard-port", str(dashboard), "--dashboard-agent-listen-port", str(agent),
                       "--disable-usage-stats"]
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            if started.returncode == 0:
                break
            end_processes(temp)
        else:
            pytest.fail(f"ray start failed 3 times; last output:\n{(started.stdout + started.stderr)[-4000:]}")
        yield {"address": f"127.0.0.1:{port}", "jobs": f"http://127.0.0.1:{dashboard}", "env": env, "temp": temp}
    finally:
        end_processes(temp)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray in this process (2 CPUs, dashboard off) whose workers can import tests.controller.*."""
    import ray

    temp = tempfile.mkdtemp(prefix="actl-", dir="/tmp")
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "ACTSEARCH_RAY_TMPDIR")}
    os.environ.update(PYTHONPATH=str(REPO), ACTSEARCH_RAY_TMPDIR=temp)  # workers import tests.controller.*
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, _temp_dir=temp)
    try:
        yield
    finally:
        ray.shutdown()
        end_processes(temp)
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
