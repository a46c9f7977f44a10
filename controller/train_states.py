"""Saved training states of a cascade run: where each candidate stopped on its rung, kept until it is promoted.

A promoted candidate trains on from its state (`evaluator.train_state.TrainState`) instead of from scratch. States
live beside the run store, one file per (function, rung), written atomically (a temporary file, then a rename) by
the driver, the only writer; a state that is missing (never written, pruned, a crash between the two writes) only
means its promotion trains from step 0 again, which gives the same result (`evaluator.training`). Nothing here is
needed to read a run.

>>> import tempfile
>>> states = TrainStates(tempfile.mkdtemp())
>>> states.put("ab12", 0, b"state")
>>> states.get("ab12", 0), states.get("ab12", 1)
(b'state', None)
>>> states.keep({}), states.get("ab12", 0)
(1, None)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["TrainStates"]

_NAME = re.compile(r"(?P<key>[0-9a-f]+)\.rung(?P<rung>\d+)\.pt\Z")


class TrainStates:
    """A folder of state files named `<fingerprint>.rung<r>.pt`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str, rung: int) -> Path:
        if not re.fullmatch(r"[0-9a-f]+", key):
            raise ValueError(f"a state key must be a hex fingerprint, got {key!r}")
        return self.folder / f"{key}.rung{rung}.pt"

    def put(self, key: str, rung: int, data: bytes) -> None:
        """Save the state of `key` after `rung`, replacing an older one atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key, rung)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    def get(self, key: str, rung: int) -> bytes | None:
        """Return the saved state of `key` after `rung`, or None."""
        try:
            return self._path(key, rung).read_bytes()
        except FileNotFoundError:
            return None

    def drop(self, key: str, rung: int) -> None:
        """Forget the state of `key` after `rung` (nothing happens when there is none)."""
        self._path(key, rung).unlink(missing_ok=True)

    def saved(self) -> list[tuple[str, int]]:
        """Return the (key, rung) of every saved state."""
        if not self.folder.is_dir():
            return []
        return [(m["key"], int(m["rung"])) for m in map(_NAME.match, os.listdir(self.folder)) if m]

    def keep(self, wanted: Mapping[int, Iterable[str]]) -> int:
        """Delete every state except those of wanted[rung]'s keys (and unfinished writes); return how many went."""
        sets = {rung: set(keys) for rung, keys in wanted.items()}
        dropped = 0
        for key, rung in self.saved():
            if key not in sets.get(rung, ()):
                self.drop(key, rung)
                dropped += 1
        for partial in self.folder.glob("*.partial") if self.folder.is_dir() else ():
            partial.unlink(missing_ok=True)
        return dropped
