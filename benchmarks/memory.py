"""Long input: peak memory and speed of the CLI on a 3-hour input.

    python benchmarks/memory.py [--hours 3] [--video] [--speech]

Makes a 3-hour input in seconds (a one-minute AAC soundtrack, see _media.py,
looped with stream copy; with ``--video`` also a 320x240 test picture in an
mp4), runs ``dramapic-subs INPUT --format srt,vtt,json -q`` on it in a fresh
process, and prints the peak resident memory (largest single process, from
wait4 as ``/usr/bin/time -v`` gives it, and the python + ffmpeg sum sampled
every 50 ms) against the 500 MB goal, and the x-real-time rate. The same
run under ``/usr/bin/time -v`` is printed too when that program exists.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import NEUTRAL_DIR, PYTHON, machine, measure  # noqa: E402
from _media import make_input  # noqa: E402

from dramapic_subs.media import find_ffmpeg  # noqa: E402

GOAL_MB = 500
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--video", action="store_true", help="an mp4 with a test picture, not audio-only m4a")
    parser.add_argument("--no-time", action="store_true", help="skip the /usr/bin/time -v cross-check")
    parser.add_argument("--speech", action="store_true",
                        help="real dev speech throughout (../shared/data): the speaker encoder runs everywhere")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = make_input(ffmpeg, args.hours * 60, folder, video=args.video, speech_from=DATA if args.speech else None)
        seconds = round(args.hours * 60) * 60
        print(f"input: {src.name}, {seconds / 3600:g} h, {src.stat().st_size / 1e6:.0f} MB")
        cmd = [PYTHON, "-m", "dramapic_subs", str(src), "-o", str(folder), "--format", "srt,vtt,json", "-q",
               "--overwrite"]
        run = measure(cmd, cwd=NEUTRAL_DIR).check()
        n_cues = sum(1 for line in (folder / f"{src.stem}.srt").read_text(encoding="utf-8").splitlines()
                     if "-->" in line)
        print(f"dramapic-subs {src.name} --format srt,vtt,json: {run.wall_s:.1f} s = "
              f"{seconds / run.wall_s:.0f}x real time, CPU {run.cpu_s:.1f} s, {n_cues} cues")
        print(f"peak RSS: largest process {run.maxrss_mb:.0f} MB, python + ffmpeg {run.tree_mb:.0f} MB "
              f"(goal < {GOAL_MB} MB: {'met' if max(run.maxrss_mb, run.tree_mb) < GOAL_MB else 'MISSED'})")
        for fmt in ("srt", "vtt", "json"):
            out = folder / f"{src.stem}.{fmt}"
            print(f"  {out.name}: {out.stat().st_size / 1e6:.1f} MB")
        if not args.no_time and os.path.exists("/usr/bin/time"):
            proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=NEUTRAL_DIR)
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            w = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", proc.stderr)
            if m:
                print(f"/usr/bin/time -v: maximum resident set size {int(m[1]) / 1024:.0f} MB, elapsed {w[1] if w else '?'}")


if __name__ == "__main__":
    main()
