"""Shared helpers of the benchmarks: timing and peak memory of a child process tree.

Every measured job runs in a fresh child process, so each peak is its own:

* ``maxrss_mb``: the largest resident set of any single process of the job
  (the child, or a descendant it waited for, such as ffmpeg), from
  ``wait4``: the figure ``/usr/bin/time -v`` prints as "Maximum resident
  set size";
* ``tree_mb``: the peak of the summed resident sets of the child and all its
  live descendants (python + ffmpeg, or the joblib workers), sampled every
  50 ms from ``/proc`` (descendants looked up every 0.5 s).

A child that prints a JSON object as its last stdout line hands back its own
internal timings in ``Run.report``.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# Children start here, not in the checkout, so that PYTHONPATH decides which
# dramapic_subs they import (to benchmark another revision: PYTHONPATH=/its/tree).
NEUTRAL_DIR = tempfile.gettempdir()
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Run:
    cmd: list[str]
    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    maxrss_mb: float
    tree_mb: float
    cpu_s: float
    report: dict = field(default_factory=dict)

    def check(self) -> "Run":
        if self.returncode != 0:
            raise SystemExit(f"benchmark job failed ({self.returncode}): {' '.join(self.cmd)}\n{self.stderr[-2000:]}")
        return self


def _descendants(root: int) -> list[int]:
    """``root`` and its live descendants (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def measure(cmd: list[str], *, env: dict | None = None, cwd: str | os.PathLike | None = None,
            sample_s: float = 0.05, rescan_s: float = 0.5) -> Run:
    """Run ``cmd`` to its end; return its wall time, CPU time and peak memory.

    The process tree is looked up every ``rescan_s`` (a scan of /proc), its
    members' RSS read every ``sample_s``: cheap enough (well under 1% of a
    core) not to slow what is measured.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, text=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            pids, scanned = [proc.pid], 0.0
            while not done.is_set():
                now = time.monotonic()
                if now - scanned >= rescan_s:
                    pids, scanned = _descendants(proc.pid), now
                peak = max(peak, sum(_rss_kb(pid) for pid in pids))
                done.wait(sample_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    report = {}
    lines = stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        report = json.loads(lines[-1])
    return Run(cmd, wall, proc.returncode, stdout, stderr, usage.ru_maxrss / 1024, peak / 1024,
               usage.ru_utime + usage.ru_stime, report)


def python_job(code: str, *args: str, env: dict | None = None) -> Run:
    """Run a Python snippet in a fresh interpreter (``sys.argv[1:]`` = ``args``)."""
    return measure([PYTHON, "-c", code, *args], env=env, cwd=NEUTRAL_DIR).check()


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python and library versions."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import scipy

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model}, "
            f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}; "
            f"load average now {load}")


def tree_env(path: str | None) -> dict | None:
    """Environment that makes children import dramapic_subs from ``path`` and use its ``models/`` (None: as installed).

    The models are set too: in an editable install the package's default
    models folder is the installed checkout's, whichever tree is imported, so
    a tree with retrained bundles would otherwise be timed with another's.
    """
    if not path:
        return None
    env = dict(os.environ)
    root = Path(path).resolve()
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if (root / "models").is_dir():
        env["DRAMAPIC_MODELS"] = str(root / "models")
    return env


def best(runs: list[Run], key: str | None = None) -> Run:
    """The fastest of repeated runs (least disturbed by other load on the machine)."""
    return min(runs, key=(lambda r: r.report[key]) if key else (lambda r: r.wall_s))
