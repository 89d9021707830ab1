"""Analysis speed: x real time of `dramapic-subs` (no burn) vs a bare ffmpeg decode.

    python benchmarks/analysis_speed.py [--minutes 1 10 60]

Builds a test video per length (a moving test picture over speech, music and
noise), then times, side by side in one run:
  * ffmpeg alone decoding the audio track to 16 kHz mono float32 (the floor);
  * the full analysis (decode, STFTs, features, both models, SRT writing).
Prints x real time for each and their ratio, after a one-off start-up that is
reported on its own line (a CLI run pays it once per process).
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from dramapic_subs.captions import write
from dramapic_subs.media import find_ffmpeg, iter_audio
from dramapic_subs.pipeline import analyze, load_models

SR = 16000


def make_video(ffmpeg: str, minutes: float, folder: Path) -> Path:
    """A test video whose soundtrack cycles through synthetic speech-like, tonal and noise parts."""
    rng = np.random.default_rng(0)
    seg = SR * 10
    t = np.arange(seg) / SR
    voiced = np.sin(2 * np.pi * 140 * t * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    tonal = sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392)) / 3
    noise = rng.standard_normal(seg)
    cycle = (0.2 * np.concatenate([voiced, tonal, noise])).astype(np.float32)
    n = int(minutes * 60 * SR)
    audio = np.tile(cycle, n // len(cycle) + 1)[:n]
    wav = folder / "bench.wav"
    sf.write(wav, audio, SR)
    out = folder / f"bench_{minutes:g}min.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=5:d={minutes * 60}",
                    "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
                    str(out)], check=True)
    wav.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    t0 = time.perf_counter()
    models = load_models()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # One-off per process: model loading, librosa's filter banks (scipy.signal import, numba).
        analyze(make_video(ffmpeg, 1 / 60, folder), models=models, ffmpeg=ffmpeg)
        print(f"start-up (models, filter banks, one 1 s clip): {time.perf_counter() - t0:.2f} s")
        for minutes in args.minutes:
            video = make_video(ffmpeg, minutes, folder)
            seconds = minutes * 60
            t0 = time.perf_counter()
            for _ in iter_audio(video, ffmpeg=ffmpeg, sr=SR):
                pass
            t_decode = time.perf_counter() - t0
            t0 = time.perf_counter()
            analysis = analyze(video, models=models, ffmpeg=ffmpeg)
            write(analysis, "srt", folder / "bench.srt")
            t_full = time.perf_counter() - t0
            print(f"{minutes:g} min: ffmpeg decode {seconds / t_decode:.0f}x real time, "
                  f"analysis {seconds / t_full:.0f}x real time, analysis/decode time ratio {t_full / t_decode:.1f}")


if __name__ == "__main__":
    main()
