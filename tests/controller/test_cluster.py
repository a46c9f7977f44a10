"""`connect_ray`: the local Ray's dashboard is off by default and listens on 127.0.0.1 only when asked for."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from controller.cluster import connect_ray
from tests.controller.conftest import end_processes, processes_marked


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) of sockets listening on `port`, IPv4 and IPv6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def dashboard_web_servers(marker: str) -> list[int]:
    """Ray's dashboard processes of this cluster that serve the web UI and its job API (Ray always starts one
    dashboard process; with the dashboard off it runs with `--disable-frontend` and opens no HTTP port)."""
    found = []
    for pid in processes_marked(marker):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if any(part.endswith(b"dashboard/dashboard.py") for part in command) and b"--disable-frontend" not in command:
            found.append(pid)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("dashboard", [False, True])
def test_dashboard_is_off_by_default_and_bound_to_localhost_when_on(dashboard: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    temp = tempfile.mkdtemp(prefix="actd-", dir="/tmp")
    monkeypatch.setenv("ACTSEARCH_RAY_TMPDIR", temp)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    try:
        url = connect_ray(None, num_cpus=1, dashboard=dashboard) if dashboard else connect_ray(None, num_cpus=1)
        if not dashboard:
            assert url is None and not dashboard_web_servers(temp)
            return
        assert url is not None and url.startswith("http://127.0.0.1:")
        assert dashboard_web_servers(temp)
        assert listening_addresses(int(url.rsplit(":", 1)[1])) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        ray.shutdown()
        end_processes(temp)
        shutil.rmtree(temp, ignore_errors=True)
