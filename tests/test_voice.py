"""The voice column only where a voice is: captions, JSON and timeline on dev speech, dev music and a tone."""
from __future__ import annotations

import json
import re

import numpy as np
import pysrt
import pytest

from .conftest import dev_audio, mux, run_cli, tone

SPEECH_S, MUSIC_S, TONE_S = 10.0, 10.0, 6.0


@pytest.fixture(scope="module")
def scenes(data_dir, ffmpeg, tmp_path_factory):
    """10 s dev speech (a male and a female reader), 10 s dev music, 6 s harmonic tone; captioned."""
    folder = tmp_path_factory.mktemp("voice")
    y = np.concatenate([dev_audio(data_dir, "librispeech_resemblyzer", SPEECH_S / 2, gender="male"),
                        dev_audio(data_dir, "librispeech_resemblyzer", SPEECH_S / 2, gender="female"),
                        dev_audio(data_dir, "zento_rusted_music", MUSIC_S, offset=30.0), tone(TONE_S)])
    src = mux(ffmpeg, y, folder / "scenes.mp4")
    run_cli(src, "--format", "srt,json", "--plot", "--quiet", check=True)
    return folder


def _cues(folder, a: float, b: float) -> list[str]:
    """Texts of the cues lying inside ``[a, b]`` seconds, a second's margin from either end."""
    subs = pysrt.open(str(folder / "scenes.srt"), encoding="utf-8")
    return [s.text for s in subs if a + 1 <= s.start.ordinal / 1000 and s.end.ordinal / 1000 <= b - 1]


def test_no_gender_over_music_or_a_tone(scenes):
    music = _cues(scenes, SPEECH_S, SPEECH_S + MUSIC_S + TONE_S)
    assert len(music) >= 10
    assert not [t for t in music if "female" in t or "male" in t], music


def test_gender_shown_on_speech(scenes):
    speech = _cues(scenes, 0, SPEECH_S)
    with_gender = [t for t in speech if t.split(" | ")[-1].split()[0] in ("female", "male")]
    # The male reader's recording is noisy: the sound model hears nature in a cue or two, and
    # there no voice is likely enough; wherever speech leads at 50% or more the gender shows.
    assert len(with_gender) >= 0.7 * len(speech) and len(speech) >= 6, speech
    assert all(t in with_gender for t in speech if re.match(r"speech ([5-9]\d|100)%", t)), speech


def test_json_keeps_every_probability(scenes):
    doc = json.loads((scenes / "scenes.json").read_text(encoding="utf-8"))
    music = [w for w in doc["windows"] if SPEECH_S + 1 <= w["start"] and not w["silence"]]
    assert music and all(w["gender"] and sum(w["gender"].values()) == pytest.approx(1, abs=1e-3) for w in music)


def test_timeline_voice_panel_fades_without_a_voice(scenes):
    from PIL import Image

    img = np.asarray(Image.open(scenes / "scenes.timeline.png").convert("RGB")).astype(int)
    h, w = img.shape[:2]
    duration = SPEECH_S + MUSIC_S + TONE_S
    x_at = lambda t: int(w * (0.06 + 0.8 * t / duration))  # noqa: E731

    def ink(t: float) -> float:
        """How far the voice panel's column at ``t`` is from white (0-255), at its most saturated."""
        column = img[int(0.70 * h):int(0.86 * h), x_at(t)]
        return float((255 - column.min(axis=1)).max())

    assert sum(ink(t) > 100 for t in (0.5, 1.5, 6.5, 7.5)) >= 3  # a voice: solid bars
    assert max(ink(t) for t in (13.5, 16.5, 22.5)) < 40  # music and tone: at most a faint trace


def test_no_voice_where_silero_hears_no_speech_whatever_the_sound_model_says():
    from dramapic_subs.voice import ACTIVITY_MIN, _likely

    labels = ["speech", "song", "music", "noise", "nature"]
    proba = np.array([[0.1, 0.8, 0.1, 0.0, 0.0]] * 3)  # the sound model hears song in all three
    silent = np.zeros(3, bool)
    peak = np.array([0.0, ACTIVITY_MIN / 2, ACTIVITY_MIN])
    assert _likely(proba, labels, silent, peak).tolist() == [False, False, True]
    assert _likely(proba, labels, silent, None).tolist() == [True, True, True]  # a model without Silero


def test_json_gives_silero_peak_per_window(scenes):
    doc = json.loads((scenes / "scenes.json").read_text(encoding="utf-8"))
    peak = {w["start"]: w["speech_activity"] for w in doc["windows"]}
    assert all(0 <= p <= 1 for p in peak.values())
    # Silero hears the readers, not the music and the tone.
    assert np.median([p for t, p in peak.items() if 1 <= t <= SPEECH_S - 2]) > 0.9
    assert max(p for t, p in peak.items() if SPEECH_S + 1 <= t) < 0.5
