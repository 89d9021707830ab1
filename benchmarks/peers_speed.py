"""Speed peers: the same audio through Silero VAD, inaSpeechSegmenter and our analysis.

    python benchmarks/peers_speed.py [--minutes 1 10] [--repeat 2]
        [--silero-python PY] [--ina-python PY --ina-weights WHEEL]

Peers answer narrower questions than dramapic-subs (five sound types and the
voice's gender, per second), so this compares cost, not accuracy. On the same
inputs as analysis_speed.py, each in a fresh process, side by side:

* ours: ``pipeline.analyze`` + SRT in a started process (as analysis_speed.py);
* silero onnx / silero jit: the file decoded to 16 kHz mono float32 by the
  same ffmpeg binary, then ``silero_vad.get_speech_timestamps`` with the ONNX model
  (onnxruntime, one thread) or the TorchScript one. Needs an interpreter
  with torch and silero-vad (``--silero-python``; default: this one);
* inaSpeechSegmenter: ``Segmenter()`` (speech/music/noise CNN and its
  female/male CNN; it decodes the file with the same ffmpeg binary) in an
  interpreter with ``inaspeechsegmenter`` (TensorFlow) installed
  (``--ina-python``). Its current release downloads its weights from GitHub
  at first use; ``--ina-weights`` names the 0.6.8 wheel from the registry,
  the last that ships the same three weight files inside, which are put
  where its loader looks (``KERAS_HOME``), so nothing is downloaded.

Model loading is timed apart (start-up); the speed is what follows it.

    python -m venv /tmp/ina && /tmp/ina/bin/pip install inaspeechsegmenter
    pip download --no-deps inaSpeechSegmenter==0.6.8 -d /tmp/ina-wheel
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import NEUTRAL_DIR, PYTHON, Run, best, machine, measure, python_job  # noqa: E402
from _media import make_input, make_warmup  # noqa: E402
from analysis_speed import ANALYSIS  # noqa: E402

from dramapic_subs.media import find_ffmpeg  # noqa: E402

SILERO = r"""
import json, subprocess, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
from silero_vad import get_speech_timestamps, load_silero_vad
model = load_silero_vad(onnx=sys.argv[2] == "onnx")
startup = time.perf_counter() - t0
t0 = time.perf_counter()
pcm = subprocess.run([sys.argv[3], "-v", "error", "-i", sys.argv[1], "-vn", "-ac", "1", "-ar", "16000",
                      "-f", "f32le", "-"], check=True, capture_output=True).stdout
y = np.frombuffer(pcm, np.float32).copy()
t1 = time.perf_counter()
speech = get_speech_timestamps(torch.from_numpy(y), model, sampling_rate=16000)
t2 = time.perf_counter()
print(json.dumps({"startup": startup, "decode": t1 - t0, "vad": t2 - t1, "seconds": t2 - t0,
                  "segments": len(speech), "audio_s": len(y) / 16000}))
"""


INA = r"""
import json, sys, time
t0 = time.perf_counter()
from inaSpeechSegmenter import Segmenter
seg = Segmenter(ffmpeg=sys.argv[2])
startup = time.perf_counter() - t0
t0 = time.perf_counter()
result = seg(sys.argv[1])
t1 = time.perf_counter()
print(json.dumps({"startup": startup, "seconds": t1 - t0, "segments": len(result)}))
"""


def _ina_env(wheel: Path, folder: Path) -> dict:
    """An environment whose KERAS_HOME holds inaSpeechSegmenter's weights, taken from ``wheel``."""
    target = folder / "keras" / "inaSpeechSegmenter"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith(".hdf5"):
                (target / Path(name).name).write_bytes(zf.read(name))
    if not any(target.glob("*.hdf5")):
        raise SystemExit(f"{wheel}: no .hdf5 weights inside")
    return dict(os.environ, KERAS_HOME=str(folder / "keras"), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")


def _job(python: str, code: str, *args: str, env: dict | None = None) -> Run:
    return measure([python, "-c", code, *args], env=env, cwd=NEUTRAL_DIR).check()


def _line(name: str, seconds: float, run: Run, t_ours: float, extra: str) -> str:
    t = run.report["seconds"]
    return (f"  {name:<28}: {t:6.2f} s = {seconds / t:5.0f}x real time   [{extra}start-up "
            f"{run.report['startup']:.2f} s; peak RSS {run.maxrss_mb:.0f} MB]   ours/peer time {t_ours / t:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--silero-python", default=PYTHON, help="interpreter with torch and silero-vad")
    parser.add_argument("--ina-python", help="interpreter with inaspeechsegmenter (skipped without it)")
    parser.add_argument("--ina-weights", type=Path, help="inaSpeechSegmenter-0.6.8-py3-none-any.whl")
    args = parser.parse_args()
    if args.ina_python and not args.ina_weights:
        raise SystemExit("--ina-python needs --ina-weights (the 0.6.8 wheel that ships the weights)")
    ffmpeg = find_ffmpeg()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm = make_warmup(ffmpeg, folder)
        ina_env = _ina_env(args.ina_weights, folder) if args.ina_python else None
        for minutes in args.minutes:
            video = make_input(ffmpeg, minutes, folder, video=True)
            seconds = round(minutes) * 60
            runs: dict[str, list[Run]] = {"ours": [], "onnx": [], "jit": [], "ina": []}
            for _ in range(args.repeat):
                runs["ours"].append(python_job(ANALYSIS, str(video), str(warm), str(folder / "bench.srt")))
                runs["onnx"].append(_job(args.silero_python, SILERO, str(video), "onnx", ffmpeg))
                runs["jit"].append(_job(args.silero_python, SILERO, str(video), "jit", ffmpeg))
                if args.ina_python:
                    runs["ina"].append(_job(args.ina_python, INA, str(video), ffmpeg, env=ina_env))
            best_of = {k: best(v, "seconds") for k, v in runs.items() if v}
            o = best_of["ours"]
            t_ours = o.report["seconds"]
            print(f"\n{seconds / 60:g} min input, best of {args.repeat} (time after start-up; decode included):")
            print(f"  dramapic-subs analysis + SRT: {t_ours:6.2f} s = {seconds / t_ours:5.0f}x real time   "
                  f"[start-up {o.report['startup']:.2f} s; peak RSS {o.maxrss_mb:.0f} MB]")
            for key, name in (("onnx", "silero VAD onnx"), ("jit", "silero VAD jit")):
                r = best_of[key]
                print(_line(name, seconds, r, t_ours, f"decode {r.report['decode']:.2f} s, VAD "
                            f"{r.report['vad']:.2f} s, {r.report['segments']} speech segments; "))
            if "ina" in best_of:
                r = best_of["ina"]
                print(_line("inaSpeechSegmenter", seconds, r, t_ours, f"{r.report['segments']} segments; "))


if __name__ == "__main__":
    main()
