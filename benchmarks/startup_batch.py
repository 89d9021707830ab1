"""Start-up and batch throughput: what someone captioning a folder of short clips waits for.

    python benchmarks/startup_batch.py [--repeat 5] [--clips 100] [--jobs 2]

Each job runs in a fresh process (the fastest of ``--repeat`` counts):

* ``--help``: ``dramapic-subs --help`` from process start to exit;
* start-up: ``dramapic-subs CLIP -q`` from the process's launch (the
  parent's clock just before it starts the child, so interpreter start-up
  counts) to the moment the
  first decoded block reaches the analysis (models loaded, media probed,
  ffmpeg decoding); the CLI is run unchanged, only that first hand-over is
  timed, in the same process;
* one clip end to end: the same 10 s clip captioned, process start to exit;
* batch: a folder of ``--clips`` copies of that 10 s clip (320x240 video,
  AAC soundtrack) captioned by one ``dramapic-subs FOLDER --jobs N -q``
  call, in clips per minute.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import NEUTRAL_DIR, PYTHON, Run, machine, measure  # noqa: E402
from _media import SR, _cycle  # noqa: E402

from dramapic_subs.media import find_ffmpeg  # noqa: E402

# Runs the CLI as installed, timing process start -> first block handed to a stream.
STARTUP = r"""
import json, os, sys, time

launched = float(os.environ["BENCH_LAUNCHED"])  # the parent's clock just before it started this process

def since_process_start():
    return time.time() - launched

import dramapic_subs.features as F
first = []
push = F.StreamFeaturizer.push
def timed_push(self, block):
    if not first:
        first.append(since_process_start())
    return push(self, block)
F.StreamFeaturizer.push = timed_push
sys.argv = ["dramapic-subs", *sys.argv[1:]]
from dramapic_subs import main
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"first_block": first[0], "total": since_process_start()}))
"""


def make_clip(ffmpeg: str, folder: Path) -> Path:
    """A 10 s mp4: moving test picture, the benchmark soundtrack's voiced, chord and noise thirds."""
    import numpy as np
    import soundfile as sf

    wav = folder / "clip.wav"
    cyc = _cycle()
    sf.write(wav, np.concatenate([cyc[:SR * 4], cyc[SR * 10:SR * 13], cyc[SR * 20:SR * 23]]), SR)
    out = folder / "clip.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=10",
                    "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", "-shortest", str(out)], check=True)
    wav.unlink()
    return out


def _fastest(cmd: list[str], repeat: int) -> Run:
    """The fastest of ``repeat`` fresh runs of ``cmd``."""
    runs = []
    for _ in range(repeat):
        env = dict(os.environ, BENCH_LAUNCHED=repr(time.time()))
        runs.append(measure(cmd, cwd=NEUTRAL_DIR, env=env).check())
    return min(runs, key=lambda r: r.wall_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    cli = [PYTHON, "-m", "dramapic_subs"]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(ffmpeg, folder)
        out = folder / "out"
        out.mkdir()
        (folder / "bout").mkdir()
        help_s = _fastest(cli + ["--help"], args.repeat).wall_s
        one = _fastest([PYTHON, "-c", STARTUP, str(clip), "-q", "--overwrite", "-o", str(out)], args.repeat)
        first, whole = one.report["first_block"], one.report["total"]
        batch = folder / "batch"
        batch.mkdir()
        for i in range(args.clips):
            shutil.copy(clip, batch / f"clip{i:03d}.mp4")
        run = measure(cli + [str(batch), "-q", "--jobs", str(args.jobs), "-o", str(folder / "bout")],
                      cwd=NEUTRAL_DIR).check()
        made = len(list((folder / "bout").glob("*.srt")))
        if made != args.clips:
            raise SystemExit(f"batch wrote {made} SRT files for {args.clips} clips")
    print(f"dramapic-subs --help:                         {help_s:5.2f} s")
    print(f"start-up (process start -> first block analysed): {first:5.2f} s")
    print(f"one 10 s clip, process start to exit:          {whole:5.2f} s")
    print(f"batch of {args.clips} 10 s clips, --jobs {args.jobs}:       {run.wall_s:5.1f} s = "
          f"{60 * args.clips / run.wall_s:.0f} clips per minute (peak tree {run.tree_mb:.0f} MB)")


if __name__ == "__main__":
    main()
