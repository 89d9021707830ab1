"""Analysis speed: x real time of the analysis against a bare ffmpeg decode, per stage, with peak memory.

    python benchmarks/analysis_speed.py [--minutes 1 10 60] [--repeat 3] [--tree NAME=PATH ...] [--speech]

With ``--tree``, every job runs once per named source tree (its
``dramapic_subs`` imported through PYTHONPATH, e.g. ``before=/tmp/head`` made
by ``git archive HEAD | tar -x -C /tmp/head``, and ``after=.``), interleaved,
so two revisions are compared under the same load.

Builds a test video per length (a moving 320x240 test picture over a soundtrack
cycling through speech-like sound, a chord and noise; longer ones loop a
one-minute file; with ``--speech``, one minute of real dev speech instead, so
that every window runs the speaker encoder), then measures side by side in one run, each job in a fresh
process so that every peak memory figure is its own:

* decode: ffmpeg alone decoding the audio track to 16 kHz mono float32 and
  the blocks read into Python (``media.iter_audio``, what the analysis reads);
* analysis: ``pipeline.analyze`` (decode, both STFTs and features in
  parallel, both models) plus writing the SRT, in a process that has already
  started (models loaded, one 1 s warm-up clip), as the README quotes it;
* CLI: ``dramapic-subs INPUT -q`` end to end, start-up included;
* stages: the same work done one stage at a time in one thread: waiting for
  decoded audio, frame analysis (STFT and frame features) and pooling per
  n_fft, each model, and writing SRT / VTT / JSON.

Repeated jobs report the fastest run (the one least disturbed by other load);
the analysis's CPU time (python threads plus ffmpeg) is printed too, as it
depends less on what else the machine is doing.
Peak memory: "rss" is the largest single process (python or ffmpeg, from
wait4, as /usr/bin/time -v reports it), "tree" the summed python + ffmpeg peak.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import NEUTRAL_DIR, PYTHON, best, machine, measure, python_job, tree_env  # noqa: E402
from _media import make_input, make_warmup  # noqa: E402

from dramapic_subs.media import find_ffmpeg  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

WHERE = r"""
import dramapic_subs
from dramapic_subs.models import GENDER, SOUND_TYPE, default_models_dir, load_bundle
print(dramapic_subs.__file__)
print(default_models_dir(), ", ".join(f"{n} n_fft {b.spec.n_fft} hop {b.spec.hop}"
                                      for n, b in ((n, load_bundle(n)) for n in (SOUND_TYPE, GENDER))))
"""

DECODE = r"""
import json, sys, time
from dramapic_subs.media import find_ffmpeg, iter_audio
ff = find_ffmpeg()
t0 = time.perf_counter()
n = sum(len(b) for b in iter_audio(sys.argv[1], ffmpeg=ff, sr=16000, block_s=30.0))
print(json.dumps({"seconds": time.perf_counter() - t0, "audio_s": n / 16000}))
"""

ANALYSIS = r"""
import json, sys, time
t0 = time.perf_counter()
from dramapic_subs.captions import write
from dramapic_subs.pipeline import analyze, load_models
models = load_models()
analyze(sys.argv[2], models=models)  # warm-up: a 1 s clip
startup = time.perf_counter() - t0
import resource
def cpu():  # this process's threads plus its finished children (ffmpeg)
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
c0, t0 = cpu(), time.perf_counter()
analysis = analyze(sys.argv[1], models=models)
t1 = time.perf_counter()
write(analysis, "srt", sys.argv[3])
t2 = time.perf_counter()
print(json.dumps({"startup": startup, "analyze": t1 - t0, "seconds": t2 - t0, "write_srt": t2 - t1,
                  "cpu": cpu() - c0, "audio_s": analysis.duration_s}))
"""

STAGES = r"""
import json, sys, time
from collections import defaultdict
import numpy as np
t_start = time.perf_counter()
from dramapic_subs import features as F
from dramapic_subs.captions import write
from dramapic_subs.media import find_ffmpeg, iter_audio
from dramapic_subs.models import smooth_probabilities
from dramapic_subs.pipeline import analyze, load_models
from dramapic_subs.windows import make_grid
T = defaultdict(float)
t0 = time.perf_counter()
models = load_models()
T["load_models"] = time.perf_counter() - t0
T["imports"] = t0 - t_start

def timed(name, fn):
    def wrapper(self, *a, **k):
        t = time.perf_counter()
        try:
            return fn(self, *a, **k)
        finally:
            T[f"{name}_{self.spec.n_fft}"] += time.perf_counter() - t
    return wrapper

originals = F.FrameAnalyzer.__call__, F.StreamFeaturizer._emit
F.FrameAnalyzer.__call__ = timed("stft_and_frame_features", F.FrameAnalyzer.__call__)
F.StreamFeaturizer._emit = timed("pooling", F.StreamFeaturizer._emit)
grid = make_grid(sr=16000)
try:  # one stream per distinct input, as the pipeline makes them
    from dramapic_subs.representations import shared_inputs
    reps = shared_inputs(rep for m in models for rep in m.inputs)
except ImportError:  # a tree from before shared_inputs
    reps = {rep.key: rep for m in models for rep in m.inputs}
streams, stream_time = {}, defaultdict(float)
for key, rep in reps.items():
    t = time.perf_counter()
    streams[key] = rep.stream(grid)
    T[f"setup_{rep.card()['kind']}" + (f"_{rep.spec.n_fft}" if hasattr(rep, "spec") else "")] += time.perf_counter() - t
blocks = iter_audio(sys.argv[1], ffmpeg=find_ffmpeg(), sr=16000, block_s=30.0)
parts = {key: [] for key in streams}
n = 0
while True:
    t = time.perf_counter()
    block = next(blocks, None)
    T["decode_wait"] += time.perf_counter() - t
    if block is None:
        break
    n += len(block)
    for key, st in streams.items():
        t = time.perf_counter()
        parts[key].append(st.push(block))
        stream_time[key] += time.perf_counter() - t
out = {}
for key, st in streams.items():
    t = time.perf_counter()
    last = st.finish()
    stream_time[key] += time.perf_counter() - t
    out[key] = type(last).concat(parts[key] + [last])
for key, seconds in stream_time.items():  # spectral streams are split into STFT/frame features and pooling above
    if reps[key].card()["kind"] != "spectral":
        T[f"stream_{reps[key].card()['kind']}"] = seconds
level = out[models[0].inputs[0].key].level_db
silent = level < F.SILENCE_FLOOR_DB
for m in models:
    t = time.perf_counter()
    X = np.hstack([getattr(rep, "select", lambda X: X)(out[rep.key].X) for rep in m.inputs])  # older trees select nothing
    proba = np.full((len(X), len(m.labels)), np.nan)
    proba[~silent] = m.predict_proba(X[~silent])
    smooth_probabilities(proba, width=m.smooth, valid=~silent)
    T[f"model_{m.name}"] = time.perf_counter() - t
F.FrameAnalyzer.__call__, F.StreamFeaturizer._emit = originals  # the analysis below is not timed
analysis = analyze(sys.argv[1], models=models)
for fmt in ("srt", "vtt", "json"):
    t = time.perf_counter()
    write(analysis, fmt, f"{sys.argv[2]}.{fmt}")
    T[f"write_{fmt}"] = time.perf_counter() - t
T["audio_s"] = n / 16000
print(json.dumps(T))
"""


def _mb(run) -> str:
    return f"rss {run.maxrss_mb:.0f} MB, tree {run.tree_mb:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each job (the fastest counts); "
                        "inputs of 30 min or more run once")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    parser.add_argument("--speech", action="store_true",
                        help="soundtrack of real dev speech throughout (from ../shared/data): every window "
                             "runs the speaker encoder, the costliest case")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="a source tree to benchmark (repeatable; default: the installed dramapic_subs)")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    trees = dict(t.split("=", 1) for t in args.tree) or {"installed": ""}
    print(f"machine: {machine()}")
    for name, path in trees.items():
        where = python_job(WHERE, env=tree_env(path)).stdout.split("\n")
        print(f"tree {name}: {Path(where[0]).parent}, models {where[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm = make_warmup(ffmpeg, folder)
        for minutes in args.minutes:
            video = make_input(ffmpeg, minutes, folder, video=True, speech_from=DATA if args.speech else None)
            seconds = round(minutes) * 60
            reps = args.repeat if minutes < 30 else 1
            runs = {name: {"decode": [], "analysis": [], "cli": []} for name in trees}
            for _ in range(reps):  # interleaved, so slow spells of the machine hit all alike
                for name, path in trees.items():
                    env, r = tree_env(path), runs[name]
                    r["decode"].append(python_job(DECODE, str(video), env=env))
                    r["analysis"].append(python_job(ANALYSIS, str(video), str(warm), str(folder / "bench.srt"),
                                                    env=env))
                    r["cli"].append(measure([PYTHON, "-m", "dramapic_subs", str(video), "-o", str(folder), "-q",
                                             "--overwrite"], cwd=NEUTRAL_DIR, env=env).check())
            print(f"\n{seconds / 60:g} min input ({video.name}), best of {reps}:")
            for name, path in trees.items():
                r = runs[name]
                d, a, c = best(r["decode"], "seconds"), best(r["analysis"], "seconds"), best(r["cli"])
                t_d, t_a = d.report["seconds"], a.report["seconds"]
                print(f" [{name}]")
                print(f"  ffmpeg decode (16 kHz mono f32 into python): {t_d:6.2f} s = {seconds / t_d:6.0f}x real time"
                      f"   [{_mb(d)}]")
                print(f"  analysis + SRT (started process):           {t_a:6.2f} s = {seconds / t_a:6.0f}x real time"
                      f"   [{_mb(a)}]   start-up {a.report['startup']:.2f} s")
                print(f"  CLI end to end (start-up included):         {c.wall_s:6.2f} s = "
                      f"{seconds / c.wall_s:6.0f}x real time   [{_mb(c)}]")
                print(f"  analysis / decode time ratio: {t_a / t_d:.2f}; analysis CPU (python + ffmpeg) "
                      f"{a.report['cpu']:.2f} s = {seconds / a.report['cpu']:.0f}x real time per CPU second")
                if args.no_stages:
                    continue
                s = python_job(STAGES, str(video), str(folder / "stages"), env=tree_env(path))
                T = s.report
                print(f"  stages, one at a time in one thread [{_mb(s)}]:")
                print(f"    imports {T['imports']:.2f} s, loading models {T['load_models']:.2f} s")
                print(f"    waiting for decoded audio {T['decode_wait']:.2f} s")
                for n_fft in (512, 1024):
                    if f"stft_and_frame_features_{n_fft}" in T:
                        print(f"    n_fft {n_fft}: set-up {T[f'setup_spectral_{n_fft}'] * 1000:.1f} ms, "
                              f"STFT + frame features {T[f'stft_and_frame_features_{n_fft}']:.2f} s, "
                              f"pooling {T[f'pooling_{n_fft}']:.2f} s")
                print("    other inputs: " + ", ".join(f"{k[7:]} {v:.2f} s" for k, v in T.items() if k.startswith("stream_")))
                print("    models: " + ", ".join(f"{k[6:]} {v:.3f} s" for k, v in T.items() if k.startswith("model_")))
                print("    writing: " + ", ".join(f"{k[6:]} {v:.3f} s" for k, v in T.items() if k.startswith("write_")))


if __name__ == "__main__":
    main()
