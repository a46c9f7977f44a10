"""Soak: a long run of the real CLI on a real local Ray; does the driver's memory stay flat, is every row kept once?

    python bench/soak.py                      # budget 2000, random strategy, xor task: ~10 minutes on 2 cores
    python bench/soak.py --budget 300         # a shorter check

Runs `python -m controller.run` as a child process (the driver) and samples its resident memory (VmRSS) twice a
second. "start" is the driver's memory when the first result is recorded (imports, Ray and the strategy all loaded);
"end" is its last sample before it exits. Then it reads the store and counts lost candidates (budget minus distinct
trained functions) and duplicated ones (trained rows of a function trained before), and runs SQLite's
`PRAGMA integrity_check`. Targets: growth under 100 MB, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import load_run  # noqa: E402


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in MB, or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rows_recorded(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="training steps per candidate on the xor task")
    parser.add_argument("--keep", action="store_true", help="keep the run store (its path is printed)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    out, store = work / "run", work / "run" / "run.sqlite"
    env = {**os.environ, "ACTSEARCH_RAY_TMPDIR": str(work / "ray"), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    (work / "ray").mkdir()
    command = [sys.executable, "-m", "controller.run", "--budget", str(args.budget), "--strategy", args.strategy,
               "--units", "2", "--ops", "small", "--task", "xor", "--steps", str(args.steps), "--workers",
               str(args.workers), "--out", str(out)]
    print("command: " + " ".join(command[1:]), flush=True)
    started = time.time()
    driver = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples: list[tuple[float, int, float]] = []  # (seconds, rows, MB)
    start_mb = None
    while driver.poll() is None:
        mb, rows = rss_mb(driver.pid), rows_recorded(store)
        if mb is not None:
            samples.append((time.time() - started, rows, mb))
            if start_mb is None and rows > 0:
                start_mb = mb
        time.sleep(0.5)
    stdout = driver.stdout.read() if driver.stdout else ""
    wall = time.time() - started
    if driver.returncode != 0:
        sys.exit(f"soak: the driver exited with status {driver.returncode}; store kept at {store}")

    frame = load_run(out)
    trained = frame[frame["trained"]]
    with sqlite3.connect(store) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    lost = args.budget - trained["fingerprint"].nunique()
    duplicated = len(trained) - trained["fingerprint"].nunique()
    end_mb = samples[-1][2]
    peak_mb = max(mb for _, _, mb in samples)
    print(f"finished in {wall:.0f} s: {len(trained)} trained, {int(frame['duplicate'].sum())} duplicate proposals and "
          f"{int(((frame['status'] == 'screened') & ~frame['duplicate']).sum())} screened recorded at no training "
          f"cost, "
          f"{int((trained['status'] != 'ok').sum())} failed")
    print("driver memory over the run (seconds, rows, MB): " + ", ".join(
        f"({t:.0f}, {r}, {m:.0f})" for t, r, m in samples[:: max(len(samples) // 8, 1)]))
    print(f"driver memory: start {start_mb:.0f} MB, end {end_mb:.0f} MB, growth {end_mb - start_mb:+.0f} MB "
          f"(target < 100), peak {peak_mb:.0f} MB")
    print(f"lost: {lost}, duplicated: {duplicated} (target 0 and 0); trial ids unique: {frame['trial_id'].is_unique}; "
          f"integrity_check: {integrity}")
    print(stdout.strip().splitlines()[0] if stdout.strip() else "")
    if args.keep:
        print(f"store: {store}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
