"""Run the real `controller.run` CLI, and SIGKILL this process in the middle of its N-th checkpoint write.

    python -m tests.controller.die_in_checkpoint N [controller.run arguments ...]

A random kill from outside rarely lands inside the few milliseconds a checkpoint takes, so the fault tests use this
to hit that window for sure: the N-th `save_checkpoint` runs its INSERT and DELETE, and the process dies with
SIGKILL just before the COMMIT, exactly as a power cut or the OOM killer would leave it. Nothing else is changed.
"""

from __future__ import annotations

import os
import signal
import sys

from controller import store
from controller.run import main


def _die_before_commit(transaction: object, *exc: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(n: int) -> None:
    """Make the n-th checkpoint write of this process end in SIGKILL before its transaction commits."""
    save = store.RunStore.save_checkpoint
    calls = 0

    def save_checkpoint(self: store.RunStore, state: dict) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            store._Transaction.__exit__ = _die_before_commit  # type: ignore[method-assign]
        save(self, state)

    store.RunStore.save_checkpoint = save_checkpoint  # type: ignore[method-assign]


if __name__ == "__main__":
    arm(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
