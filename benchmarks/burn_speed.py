"""Burn cost: burning captions in vs a plain re-encode with the same encoder settings.

    python benchmarks/burn_speed.py [--seconds 30] [--size 1280x720] [--repeat 5]

Makes a test video (moving test picture, AAC soundtrack), analyses it once,
then times side by side, alternating, each in a fresh process:

* burn: the exact ffmpeg command ``burn.py`` runs (libass ``subtitles``
  filter, libx264 veryfast crf 20, yuv420p, audio copied, faststart);
* plain: the same command without the ``-vf`` filter graph: the floor that
  any burn has to pay for re-encoding the picture;
* product: ``burn.burn()`` called from Python (captions and font copied to a
  temporary folder, then that same command, with progress read from ffmpeg).

Prints each one's time (fastest and median of the runs), x real time, CPU
time and peak memory (ffmpeg's own), and the burn / plain ratio (goal: at most
1.1) of the fastest runs, of the medians and of CPU time; on a busy machine
the CPU-time ratio is the steadiest. ``burn.burn()`` runs in the first two
rounds only.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import best, machine, measure, python_job  # noqa: E402
from _media import make_burn_video  # noqa: E402

from dramapic_subs import burn as burner  # noqa: E402
from dramapic_subs import captions  # noqa: E402
from dramapic_subs.media import find_ffmpeg, probe  # noqa: E402
from dramapic_subs.pipeline import analyze, load_models  # noqa: E402

PRODUCT = r"""
import json, sys, time
from pathlib import Path
from dramapic_subs.burn import burn
from dramapic_subs.media import find_ffmpeg, probe
from dramapic_subs.pipeline import analyze, load_models
src, out = Path(sys.argv[1]), Path(sys.argv[2])
ff = find_ffmpeg()
info = probe(src, ffmpeg=ff)
analysis = analyze(src, models=load_models(), ffmpeg=ff, info=info)
t0 = time.perf_counter()
burn(src, analysis, out, lang="en", ffmpeg=ff, info=info)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

GOAL = 1.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = make_burn_video(ffmpeg, args.seconds, folder, size=args.size)
        info = probe(src, ffmpeg=ffmpeg)
        analysis = analyze(src, models=load_models(), ffmpeg=ffmpeg, info=info)
        # The burn's private folder, as burn.burn() lays it out.
        work = folder / "burn"
        (work / "fonts").mkdir(parents=True)
        captions.write(analysis, "srt", work / "captions.srt", lang="en")
        shutil.copy(burner.FONT_FILE, work / "fonts" / burner.FONT_FILE.name)
        out = folder / "out.mp4"
        burn_args = burner._burn_args(src, out, work, info, analysis.duration_s)
        i = burn_args.index("-vf")
        plain_args = burn_args[:i] + burn_args[i + 2:]
        head = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error"]
        burns, plains, products = [], [], []
        for i in range(args.repeat):
            burns.append(measure([*head, *burn_args]).check())
            plains.append(measure([*head, *plain_args]).check())
            if i < 2:
                products.append(python_job(PRODUCT, str(src), str(folder / "product.mp4")))
        b, p, r = best(burns), best(plains), best(products, "seconds")
        med_b = statistics.median(x.wall_s for x in burns)
        med_p = statistics.median(x.wall_s for x in plains)
        secs = analysis.duration_s
        print(f"input: {args.size}, 25 fps, {secs:.0f} s, H.264 + AAC; output libx264 veryfast crf 20; "
              f"{args.repeat} runs each, alternating")
        print(f"  plain re-encode (no filter):  fastest {p.wall_s:6.2f} s = {secs / p.wall_s:5.1f}x real time, "
              f"median {med_p:6.2f} s, CPU {min(x.cpu_s for x in plains):6.2f} s   [ffmpeg peak RSS {p.maxrss_mb:.0f} MB]")
        print(f"  burn (libass subtitles):      fastest {b.wall_s:6.2f} s = {secs / b.wall_s:5.1f}x real time, "
              f"median {med_b:6.2f} s, CPU {min(x.cpu_s for x in burns):6.2f} s   [ffmpeg peak RSS {b.maxrss_mb:.0f} MB]")
        print(f"  burn.burn() from Python:      fastest {r.report['seconds']:6.2f} s "
              f"(process with models loaded: peak RSS {r.maxrss_mb:.0f} MB, python + ffmpeg {r.tree_mb:.0f} MB)")
        ratio = b.wall_s / p.wall_s
        cpu_ratio = min(x.cpu_s for x in burns) / min(x.cpu_s for x in plains)
        print(f"  burn / plain: fastest {ratio:.3f}, median {med_b / med_p:.3f}, CPU time {cpu_ratio:.3f} "
              f"(goal <= {GOAL}: {'met' if min(ratio, med_b / med_p) <= GOAL else 'MISSED'}); "
              f"burn.burn() / plain, fastest: {r.report['seconds'] / p.wall_s:.3f}")


if __name__ == "__main__":
    main()
