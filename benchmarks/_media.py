"""Benchmark inputs, built cheaply with ffmpeg: one minute is encoded, longer files loop it.

The soundtrack cycles through 10 s of a speech-like voiced sound (140 Hz,
4 Hz syllable rhythm), 10 s of a chord and 10 s of noise, so every feature and
both models do real work. Longer inputs repeat the one-minute file with
``-stream_loop`` and stream copy, so a 3-hour input costs seconds to make.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def _cycle() -> np.ndarray:
    rng = np.random.default_rng(0)
    seg = SR * 10
    t = np.arange(seg) / SR
    voiced = (np.sin(2 * np.pi * 140 * t * (1 + 0.05 * np.sin(2 * np.pi * 4 * t)))
              * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)))
    tonal = sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392)) / 3
    noise = rng.standard_normal(seg)
    return (0.2 * np.concatenate([voiced, tonal, noise])).astype(np.float32)


def _speech_minute(data_dir: Path) -> np.ndarray:
    """One minute of real recorded speech: dev clips of several speakers and both genders, in manifest order.

    Every window then needs the speaker encoder: the analysis's costliest case.
    """
    from dramapic_subs.media import read_audio
    from dramapic_subs.train.tables import read_manifest

    out, need = [], SR * 60
    rows = [r for r in read_manifest(data_dir, "dev") if r["category"] == "speech"]
    for row in rows[::7]:  # spread over speakers and corpora
        y = read_audio(data_dir / row["path"], sr=SR)
        out.append(y)
        need -= len(y)
        if need <= 0:
            break
    return np.concatenate(out)[:SR * 60]


def one_minute(ffmpeg: str, folder: Path, *, video: bool, speech_from: Path | None = None) -> Path:
    """The one-minute unit: AAC in m4a, or under a 320x240 5 fps test picture in mp4.

    The soundtrack is the synthetic cycle, or real speech from ``speech_from``
    (the data folder) throughout.
    """
    out = folder / (("speech_" if speech_from else "") + ("unit.mp4" if video else "unit.m4a"))
    if out.exists():
        return out
    wav = folder / "unit.wav"
    sf.write(wav, _speech_minute(speech_from) if speech_from else np.tile(_cycle(), 2), SR)
    args = [ffmpeg, "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=5:d=60"]
    args += ["-i", str(wav)]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"]
    args += ["-c:a", "aac", "-b:a", "64k", "-shortest", str(out)]
    subprocess.run(args, check=True)
    wav.unlink()
    return out


def make_input(ffmpeg: str, minutes: float, folder: Path, *, video: bool = True,
               speech_from: Path | None = None) -> Path:
    """A ``minutes``-long input (whole minutes, at least one) made by looping the unit
    (of real speech from the data folder ``speech_from``, if given)."""
    unit = one_minute(ffmpeg, folder, video=video, speech_from=speech_from)
    n = max(1, round(minutes))
    out = folder / f"bench_{'speech_' if speech_from else ''}{n}min.{'mp4' if video else 'm4a'}"
    if not out.exists():
        subprocess.run([ffmpeg, "-v", "error", "-y", "-stream_loop", str(n - 1), "-i", str(unit),
                        "-c", "copy", "-t", str(n * 60), str(out)], check=True)
    return out


def make_burn_video(ffmpeg: str, seconds: float, folder: Path, size: str = "1280x720", fps: int = 25) -> Path:
    """A moving test picture with an AAC soundtrack (the cycle above), for burn timing."""
    out = folder / f"burn_{size}_{seconds:g}s.mp4"
    if out.exists():
        return out
    wav = folder / "burn.wav"
    n = int(seconds * SR)
    cyc = _cycle()
    sf.write(wav, np.tile(cyc, n // len(cyc) + 1)[:n], SR)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}",
                    "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "96k", "-shortest", str(out)], check=True)
    wav.unlink()
    return out


def make_warmup(ffmpeg: str, folder: Path) -> Path:
    """A 1 s AAC tone: run once first, so start-up costs stay out of the timed runs."""
    warm = folder / "warm.m4a"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=f=300:d=1", "-c:a", "aac", str(warm)],
                   check=True)
    return warm
