"""Korean captions render with real Hangul glyphs; the shipped example is labelled right."""
from __future__ import annotations

import numpy as np
import pysrt

from dramapic_subs.burn import FONT_FILE
from dramapic_subs.captions import LABELS

from .conftest import ROOT, assert_example_labels, mux, run_cli, tone


def test_font_has_every_label_glyph():
    from fontTools.ttLib import TTFont

    cmap = TTFont(FONT_FILE).getBestCmap()
    text = "".join(v for names in LABELS.values() for v in names.values()) + "0123456789%·|()"
    missing = sorted({ch for ch in text if ord(ch) not in cmap and not ch.isspace()})
    assert missing == []


def test_korean_burn_draws_hangul(tmp_path, ffmpeg):
    from moviepy import VideoFileClip

    src = mux(ffmpeg, tone(4.0), tmp_path / "clip.mp4", size="640x360")
    proc = run_cli(src, "--burn", "--lang", "ko", "--quiet")
    assert proc.returncode == 0, proc.stderr
    subs = pysrt.open(str(tmp_path / "clip.srt"), encoding="utf-8")
    assert any("\uac00" <= ch <= "\ud7a3" for s in subs for ch in s.text), "no Hangul in the captions"
    with VideoFileClip(str(src)) as a, VideoFileClip(str(tmp_path / "clip.subtitled.mp4")) as b:
        fa, fb = a.get_frame(1.5).astype(int), b.get_frame(1.5).astype(int)
    changed = np.abs(fa - fb).max(axis=2) > 80
    rows = changed.any(axis=1)
    assert rows[int(0.75 * len(rows)):].sum() >= 10, "no caption drawn"
    # Missing glyphs render as identical boxes; real glyphs give columns of
    # varied ink. Count distinct column profiles in the caption band.
    band = changed[int(0.75 * len(rows)):]
    profiles = {tuple(col) for col in band.T if col.any()}
    assert len(profiles) > 40


def test_shipped_example_is_labelled_correctly(tmp_path):
    proc = run_cli(ROOT / "examples" / "example.mp4", "--format", "json", "-o", tmp_path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert_example_labels(tmp_path / "example.json")
