"""Silero VAD as a speed peer: the same audio through Silero's voice activity detector and through our analysis.

    pip install ".[bench]"          # silero-vad, onnxruntime (and torch, which silero-vad requires)
    python benchmarks/vad_peer.py [--minutes 1 10] [--repeat 2]

Silero VAD answers a narrower question (speech or not, every 32 ms) than
dramapic-subs (five sound types and the voice's gender, per second), so this
compares cost, not accuracy. On the same inputs as analysis_speed.py, each
in a fresh process, side by side:

* ours: ``pipeline.analyze`` + SRT in a started process (as analysis_speed.py);
* silero onnx / silero jit: the file decoded to 16 kHz mono by the same
  ffmpeg call, then ``silero_vad.get_speech_timestamps`` with the ONNX model
  (onnxruntime) or the TorchScript one; model loading is timed apart.

Silero VAD runs one thread by design (its loader sets torch to one thread;
onnxruntime is given one intra-op thread); ours uses both cores.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import best, machine, python_job  # noqa: E402
from _media import make_input, make_warmup  # noqa: E402
from analysis_speed import ANALYSIS  # noqa: E402

from dramapic_subs.media import find_ffmpeg  # noqa: E402

SILERO = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
from silero_vad import get_speech_timestamps, load_silero_vad
from dramapic_subs.media import find_ffmpeg, iter_audio
model = load_silero_vad(onnx=sys.argv[2] == "onnx")
startup = time.perf_counter() - t0
t0 = time.perf_counter()
y = np.concatenate(list(iter_audio(sys.argv[1], ffmpeg=find_ffmpeg(), sr=16000)))
t1 = time.perf_counter()
speech = get_speech_timestamps(torch.from_numpy(y), model, sampling_rate=16000)
t2 = time.perf_counter()
print(json.dumps({"startup": startup, "decode": t1 - t0, "vad": t2 - t1, "seconds": t2 - t0,
                  "segments": len(speech), "audio_s": len(y) / 16000}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    try:
        import silero_vad  # noqa: F401
    except ImportError:
        raise SystemExit('silero-vad is not installed: pip install ".[bench]"') from None
    import importlib.metadata as md

    ffmpeg = find_ffmpeg()
    print(f"machine: {machine()}")
    print(f"silero-vad {md.version('silero-vad')}, onnxruntime {md.version('onnxruntime')}, torch {md.version('torch')}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm = make_warmup(ffmpeg, folder)
        for minutes in args.minutes:
            video = make_input(ffmpeg, minutes, folder, video=True)
            seconds = round(minutes) * 60
            ours, onnx, jit = [], [], []
            for _ in range(args.repeat):
                ours.append(python_job(ANALYSIS, str(video), str(warm), str(folder / "bench.srt")))
                onnx.append(python_job(SILERO, str(video), "onnx"))
                jit.append(python_job(SILERO, str(video), "jit"))
            o, x, j = best(ours, "seconds"), best(onnx, "seconds"), best(jit, "seconds")
            print(f"\n{seconds / 60:g} min input, best of {args.repeat} (time after start-up; decode included):")
            t_ours = o.report["seconds"]
            print(f"  dramapic-subs analysis + SRT: {t_ours:6.2f} s = {seconds / t_ours:5.0f}x real time   "
                  f"[start-up {o.report['startup']:.2f} s; peak RSS {o.maxrss_mb:.0f} MB]")
            for name, r in (("silero VAD onnx", x), ("silero VAD jit", j)):
                t = r.report["seconds"]
                print(f"  {name:<28}: {t:6.2f} s = {seconds / t:5.0f}x real time   [decode {r.report['decode']:.2f} s, "
                      f"VAD {r.report['vad']:.2f} s, {r.report['segments']} speech segments; start-up "
                      f"{r.report['startup']:.2f} s; peak RSS {r.maxrss_mb:.0f} MB]   ours/silero time "
                      f"{t_ours / t:.2f}")


if __name__ == "__main__":
    main()
