"""The drama-like programmes' truth timeline (train/programmes.py): what the report scores cues against."""
from __future__ import annotations

import numpy as np

from dramapic_subs.train import programmes as P
from dramapic_subs.train.tables import read_manifest

from .conftest import SR, tone, white_noise


def quiet_line(lead_s: float, voice_s: float, tail_s: float) -> np.ndarray:
    """A line as RAVDESS records it: room tone 60 dB down, the voice, room tone again."""
    room = 0.001 * white_noise(lead_s + voice_s + tail_s, seed=1)
    y = room.copy()
    a = int(lead_s * SR)
    y[a:a + int(voice_s * SR)] += tone(voice_s, 220.0)
    return y


def test_audible_extent_finds_where_a_clip_sounds():
    first, last = P.audible_extent(quiet_line(0.8, 1.5, 0.6))
    assert abs(first - 0.8) <= 0.05 and abs(last - 2.3) <= 0.05
    assert P.audible_extent(np.zeros(100, np.float32)) == (0.0, 100 / SR)  # shorter than a frame: all of it


def test_a_lines_room_tone_is_silence_and_a_beds_is_the_bed(data_dir):
    b = P._Builder([], data_dir, np.random.default_rng(0))
    b.add(quiet_line(0.8, 1.5, 0.6), "speech", "female")
    voice = quiet_line(0.5, 2.0, 0.5)
    b.add(voice + 0.05 * white_noise(3.0, seed=2), "speech", "male", "music", heard=voice)
    got = [(round(s.start, 2), round(s.end, 2), s.category, s.gender, s.bed) for s in b.segments]
    assert got == [(0.0, 0.8, "silence", "", ""), (0.8, 2.3, "speech", "female", ""), (2.3, 2.9, "silence", "", ""),
                   (2.9, 3.4, "music", "", ""), (3.4, 5.4, "speech", "male", "music"), (5.4, 5.9, "music", "", "")]


def test_a_programme_timeline_covers_its_audio_and_speech_segments_sound(data_dir):
    rows = read_manifest(data_dir, "dev")
    y, segments = P.build(rows, data_dir, seconds=40.0, seed=3)
    assert segments[0].start == 0.0 and abs(segments[-1].end - len(y) / SR) < 1e-6
    assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(segments, segments[1:]))
    frame = SR // 20
    for s in segments:
        if s.category != "speech" or s.bed:
            continue
        clip = y[int(round(s.start * SR)):int(round(s.end * SR))]
        level = 10 * np.log10(np.mean(clip[: len(clip) // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-12)
        # It starts and ends sounding: its first and last 50 ms are within the audible range of its loudest.
        assert level[0] >= level.max() - P.AUDIBLE_DB - 1 and level[-1] >= level.max() - P.AUDIBLE_DB - 1
