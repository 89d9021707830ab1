"""Bad input: one line naming the file and the problem, non-zero exit, no traceback,
input untouched, no partial output."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

from dramapic_subs.models import default_models_dir

from .conftest import SR, mux, run_cli, tone


def _assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dramapic-subs: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def short_clip(tmp_path, ffmpeg):
    return mux(ffmpeg, tone(3.0), tmp_path / "short.mp4")


def test_missing_file(tmp_path):
    proc = run_cli(tmp_path / "nope.mp4")
    _assert_one_line_error(proc, "nope.mp4", "no such file")
    assert _listing(tmp_path) == []


def test_directory_without_media(tmp_path):
    (tmp_path / "notes.txt").write_text("no media here")
    _assert_one_line_error(run_cli(tmp_path), str(tmp_path), "holds no video or audio files")
    assert _listing(tmp_path) == ["notes.txt"]


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    before = fake.read_bytes()
    _assert_one_line_error(run_cli(fake), "notes.mp4", "not a media file")
    assert fake.read_bytes() == before
    assert _listing(tmp_path) == ["notes.mp4"]


def test_video_without_audio(tmp_path, ffmpeg):
    silent_video = tmp_path / "mute.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=5:d=3",
                    "-c:v", "libx264", "-preset", "ultrafast", str(silent_video)], check=True)
    _assert_one_line_error(run_cli(silent_video), "mute.mp4", "no audio stream")
    assert _listing(tmp_path) == ["mute.mp4"]


def test_zero_length_audio(tmp_path, ffmpeg):
    empty = tmp_path / "empty.wav"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"anullsrc=r={SR}:cl=mono", "-t", "0",
                    str(empty)], check=True)
    _assert_one_line_error(run_cli(empty), "empty.wav")
    assert _listing(tmp_path) == ["empty.wav"]


def test_unwritable_output_folder(tmp_path, short_clip):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    immutable = False
    if os.access(locked, os.W_OK):  # root ignores mode bits; an immutable folder stops it too
        immutable = subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a folder unwritable here (root without chattr)")
    try:
        _assert_one_line_error(run_cli(short_clip, "-o", locked), "not writable")
        assert _listing(locked) == []
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        locked.chmod(0o700)


def test_missing_output_folder(tmp_path, short_clip):
    _assert_one_line_error(run_cli(short_clip, "-o", tmp_path / "no" / "such"), "does not exist")


def test_existing_output_needs_overwrite(tmp_path, short_clip):
    srt = tmp_path / "short.srt"
    srt.write_text("keep me")
    # Older than the input, so not a finished job that would simply be skipped.
    os.utime(srt, (short_clip.stat().st_mtime - 60,) * 2)
    _assert_one_line_error(run_cli(short_clip), "short.srt", "--overwrite")
    assert srt.read_text() == "keep me"
    assert run_cli(short_clip, "--overwrite", "--quiet").returncode == 0
    assert srt.read_text().startswith("1\n")


def test_bad_options_are_one_line(short_clip):
    _assert_one_line_error(run_cli(short_clip, "--format", "srt,docx"), "docx")
    _assert_one_line_error(run_cli(short_clip, "--lang", "fr"), "--lang")
    _assert_one_line_error(run_cli(short_clip, "--window", "0.5", "--hop", "1"), "--window")


@pytest.mark.parametrize("name", ["a b 'q' \"d\" [x], y;z: 드라마.mp4", "-dash,colon:1.mp4"])
def test_odd_path_characters_through_every_output(tmp_path, ffmpeg, name):
    src = mux(ffmpeg, tone(3.0), tmp_path / "plain.mp4").rename(tmp_path / name)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    proc = run_cli("--burn", "--format", "srt,vtt,json", "--quiet", "--", src)
    assert proc.returncode == 0, proc.stderr
    stem = src.stem
    for suffix in (".srt", ".vtt", ".json", ".subtitled.mp4"):
        assert (tmp_path / f"{stem}{suffix}").stat().st_size > 0
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before


def test_altered_model_is_refused_before_unpickling(tmp_path, short_clip):
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models, ignore=shutil.ignore_patterns("__*"))
    blob = models / "gender.joblib"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    proc = run_cli(short_clip, "--models", models)
    _assert_one_line_error(proc, "gender.joblib", "sha256")
    assert not (short_clip.parent / "short.srt").exists()


def test_very_short_audio_gets_one_cue(tmp_path, ffmpeg):
    clip = mux(ffmpeg, tone(0.2), tmp_path / "blip.mp4")
    assert run_cli(clip, "--format", "json", "--quiet").returncode == 0
    import json

    doc = json.loads((tmp_path / "blip.json").read_text())
    assert len(doc["windows"]) == 1 and doc["windows"][0]["end"] == pytest.approx(doc["duration"])
