"""Starting or joining Ray, with one clear error when that is not possible (shared by searches and validations)."""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["ClusterError", "connect_ray"]


class ClusterError(RuntimeError):
    """Ray could not be started or the cluster address could not be reached; the message says what to check."""


def _reachable(address: str, seconds: float = 3.0) -> None:
    """Raise ClusterError unless host:port of `address` accepts a TCP connection within `seconds`."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r} is not auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({error}); is `ray start --head` running there, "
            "and is the port open?"
        ) from None


def connect_ray(address: str | None, num_cpus: int | None = None, dashboard: bool = False) -> str | None:
    """Start a local Ray (`address` None) or join the cluster at `address`; return the dashboard URL or None.

    The local Ray's dashboard is off unless `dashboard` is set, and then bound to 127.0.0.1 only: it can submit jobs,
    so it must never listen on a public interface (reach it from elsewhere through an SSH tunnel). Checking the TCP
    port first turns a wrong address into an error within seconds instead of Ray's long retries.
    `ACTSEARCH_RAY_TMPDIR` moves the local Ray's session files (tests use it to stay inside their temp dirs).
    """
    import ray

    if ray.is_initialized():
        return None
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None:
            context = ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=dashboard,
                dashboard_host="127.0.0.1",
                _temp_dir=os.environ.get("ACTSEARCH_RAY_TMPDIR"),
                **quiet,
            )
        else:
            if address != "auto":
                _reachable(address)
            ray.init(address=address, **quiet)
            return None
    except ClusterError:
        raise
    except Exception as error:  # Ray raises bare Exceptions too (e.g. "node timed out during startup")
        where = "a local Ray" if address is None else f"the Ray cluster at {address!r}"
        raise ClusterError(f"cannot connect to {where}: {str(error).strip().splitlines()[0]}") from None
    url = context.dashboard_url if dashboard else None
    return f"http://{url}" if url else None
