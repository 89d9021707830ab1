"""Build examples/example.mp4: a 45-second clip made entirely by this script.

Nothing in it is copied from any corpus, so the project may ship it:
speech is synthesised with espeak-ng (its output is not covered by its
licence), music and noise are synthesised here with numpy, and the picture is
drawn with moviepy using the project's own caption font.

    apt-get install espeak-ng        # only needed to rebuild the example
    python examples/make_example.py

Timeline (also written to examples/example.truth.json):
  0-1 s silence, 1-13 s female speech, 13-25 s music, 25-37 s male speech,
  37-45 s noise (an air conditioner's hum and fan).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
HERE = Path(__file__).resolve().parent
FONT = HERE.parent / "dramapic_subs" / "fonts" / "DramapicSans-Bold.ttf"
FEMALE = ("Good evening, and welcome back. Tonight I am talking with the director about her new drama. "
          "She spent two years writing it, and it shows.")
MALE = ("Thank you for having me. We filmed most of the scenes on location, late at night, "
        "and usually in the rain. The whole crew was soaked.")


def speak(text: str, voice: str, seconds: float) -> np.ndarray:
    """espeak-ng speech, resampled to 16 kHz, padded or cut to ``seconds``."""
    import librosa

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(wav), text], check=True)
        y, sr = sf.read(wav, dtype="float32")
    y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    return fit(0.3 * y / (np.abs(y).max() + 1e-9), seconds)


def fit(y: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A piano-like chord progression over a bass line (120 bpm)."""
    t_beat = 0.5
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]  # C Am F G (MIDI)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    beat = int(t_beat * SR)
    for b in range(n // beat):
        chord = chords[(b // 4) % len(chords)]
        notes = [chord[b % 3] + 12, chord[0] - 12, *chord]  # melody, bass and the full chord
        for note in notes:
            f0 = 440.0 * 2 ** ((note - 69) / 12)
            t = np.arange(int(1.5 * beat)) / SR
            tone = sum(np.sin(2 * np.pi * f0 * h * t) / h ** 1.5 for h in range(1, 7))
            seg = (0.08 * tone * np.exp(-3.0 * t)).astype(np.float32)
            end = min(n, b * beat + len(seg))
            out[b * beat:end] += seg[: end - b * beat]
    return out


def drums(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Kick on the beat, snare on the off-beat, hi-hats between (120 bpm, 8ths)."""
    n, step = int(seconds * SR), int(0.25 * SR)
    out = np.zeros(n, np.float32)
    t = np.arange(3000) / SR
    kick = np.sin(2 * np.pi * (60 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12) * 0.5
    for b in range(n // step):
        if b % 4 == 0:
            hit = kick
        else:
            hit = rng.standard_normal(3000) * np.exp(-t * (25 if b % 4 == 2 else 80)) * (0.25 if b % 4 == 2 else 0.06)
        end = min(n, b * step + len(hit))
        out[b * step:end] += hit[: end - b * step].astype(np.float32)
    return out


def noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """An air conditioner: mains hum and its harmonic over broadband fan noise."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    hum = 0.2 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 100 * t)
    return (hum + 0.08 * rng.standard_normal(n)).astype(np.float32)


def main() -> None:
    from moviepy import AudioArrayClip, ColorClip, CompositeVideoClip, TextClip

    rng = np.random.default_rng(7)
    parts = [
        ("silence", np.zeros(SR, np.float32)),
        ("speech/female", speak(FEMALE, "en-us+f3", 12)),
        ("music", music(12, rng) + drums(12, rng)),
        ("speech/male", speak(MALE, "en-us+m3", 12)),
        ("noise", noise(8, rng)),
    ]
    audio = np.concatenate([p for _, p in parts])
    truth, t = [], 0.0
    for label, p in parts:
        truth.append({"start": t, "end": t + len(p) / SR, "label": label})
        t += len(p) / SR
    duration = len(audio) / SR
    clips = [ColorClip((640, 360), color=(24, 32, 56), duration=duration)]
    for seg in truth:
        title = TextClip(font=str(FONT), text=f"example: {seg['label']}", font_size=30, color="white", margin=(10, 12),
                         duration=seg["end"] - seg["start"]).with_start(seg["start"]).with_position(("center", 60))
        clips.append(title)
    video = CompositeVideoClip(clips, size=(640, 360))
    stereo = np.stack([audio, audio], axis=1)
    video = video.with_audio(AudioArrayClip(stereo, fps=SR))
    video.write_videofile(str(HERE / "example.mp4"), fps=10, codec="libx264", audio_codec="aac",
                          audio_fps=44100, preset="slow", ffmpeg_params=["-crf", "30"], logger=None)
    (HERE / "example.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {HERE / 'example.mp4'} ({duration:.1f} s)")


if __name__ == "__main__":
    main()
