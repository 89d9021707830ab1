"""Bad input: one line naming the file and the problem, non-zero exit, no traceback,
input untouched, no partial output.

The matrix: missing file, folder without media, text file named .mp4, mp4
without audio, zero-length and 0.2 s audio, truncated mp4 (moov at the end:
refused; faststart: what is there is decoded, with one warning), unwritable
or missing output folder, existing output without --overwrite, odd path
characters through every output, altered model, and Ctrl-C during analysis
and during burning. Every row checks that the input's bytes are unchanged.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

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


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _unchanged(*paths):
    """Assert that the files' bytes (sha256) and modification times are the same afterwards."""
    before = {p: (_sha256(p), os.stat(p).st_mtime_ns) for p in paths}
    yield
    for p, (digest, mtime) in before.items():
        assert _sha256(p) == digest, f"input {p} was modified"
        assert os.stat(p).st_mtime_ns == mtime, f"input {p} was touched"


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
    with _unchanged(fake):
        _assert_one_line_error(run_cli(fake), "notes.mp4", "not a media file")
    assert _listing(tmp_path) == ["notes.mp4"]


def test_video_without_audio(tmp_path, ffmpeg):
    silent_video = tmp_path / "mute.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=5:d=3",
                    "-c:v", "libx264", "-preset", "ultrafast", str(silent_video)], check=True)
    with _unchanged(silent_video):
        _assert_one_line_error(run_cli(silent_video), "mute.mp4", "no audio stream")
    assert _listing(tmp_path) == ["mute.mp4"]


def test_zero_length_audio(tmp_path, ffmpeg):
    empty = tmp_path / "empty.wav"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"anullsrc=r={SR}:cl=mono", "-t", "0",
                    str(empty)], check=True)
    with _unchanged(empty):
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
        with _unchanged(short_clip):
            _assert_one_line_error(run_cli(short_clip, "-o", locked), "not writable")
        assert _listing(locked) == []
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        locked.chmod(0o700)


def test_missing_output_folder(tmp_path, short_clip):
    with _unchanged(short_clip):
        _assert_one_line_error(run_cli(short_clip, "-o", tmp_path / "no" / "such"), "does not exist")
        # A batch hears it once, as a bad option, before any input is read.
        proc = run_cli(short_clip, short_clip, short_clip, "-o", tmp_path / "no" / "such")
        _assert_one_line_error(proc, "does not exist")
        assert proc.returncode == 2


def test_existing_output_needs_overwrite(tmp_path, short_clip):
    srt = tmp_path / "short.srt"
    srt.write_text("keep me")
    # Older than the input, so not a finished job that would simply be skipped.
    os.utime(srt, (short_clip.stat().st_mtime - 60,) * 2)
    with _unchanged(short_clip):
        _assert_one_line_error(run_cli(short_clip), "short.srt", "--overwrite")
        assert srt.read_text() == "keep me"
        assert run_cli(short_clip, "--overwrite", "--quiet").returncode == 0
    assert srt.read_text().startswith("1\n")


def test_bad_options_are_one_line(short_clip):
    with _unchanged(short_clip):
        _assert_one_line_error(run_cli(short_clip, "--format", "srt,docx"), "docx")
        _assert_one_line_error(run_cli(short_clip, "--lang", "fr"), "--lang")
        _assert_one_line_error(run_cli(short_clip, "--window", "0.5", "--hop", "1"), "--window")
        _assert_one_line_error(run_cli(short_clip, "--position", "middle"), "--position")
        _assert_one_line_error(run_cli(short_clip, "--font-size", "50"), "--font-size")
        _assert_one_line_error(run_cli(short_clip, "--smooth", "4"), "--smooth")
        _assert_one_line_error(run_cli(short_clip, "--smooth", "0"), "--smooth")


@pytest.mark.parametrize("name", ["a b 'q' \"d\" [x], y;z: 드라마.mp4", "-dash,colon:1.mp4"])
def test_odd_path_characters_through_every_output(tmp_path, ffmpeg, name):
    src = mux(ffmpeg, tone(3.0), tmp_path / "plain.mp4").rename(tmp_path / name)
    with _unchanged(src):
        proc = run_cli("--burn", "--format", "srt,vtt,json", "--quiet", "--", src)
    assert proc.returncode == 0, proc.stderr
    stem = src.stem
    for suffix in (".srt", ".vtt", ".json", ".subtitled.mp4"):
        assert (tmp_path / f"{stem}{suffix}").stat().st_size > 0


def test_altered_model_is_refused(tmp_path, short_clip):
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models, ignore=shutil.ignore_patterns("__*"))
    blob = models / "gender.npz"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with _unchanged(short_clip):
        proc = run_cli(short_clip, "--models", models)
    _assert_one_line_error(proc, "gender.npz", "sha256")
    assert not (short_clip.parent / "short.srt").exists()


def test_very_short_audio_gets_one_cue(tmp_path, ffmpeg):
    clip = mux(ffmpeg, tone(0.2), tmp_path / "blip.mp4")
    with _unchanged(clip):
        assert run_cli(clip, "--format", "json", "--quiet").returncode == 0
    doc = json.loads((tmp_path / "blip.json").read_text())
    assert len(doc["windows"]) == 1 and doc["windows"][0]["end"] == pytest.approx(doc["duration"])


# --- truncated files -------------------------------------------------------------------------


def _top_level_boxes(path: Path) -> list[str]:
    """Types of an mp4's top-level boxes, in file order (stops at a box cut short)."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def _cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture()
def twenty_seconds(tmp_path, ffmpeg) -> Path:
    """A 20 s mp4 as ffmpeg writes it by default: the index (moov) after the media data."""
    full = mux(ffmpeg, tone(20.0, 220.0), tmp_path / "full.mp4")
    boxes = _top_level_boxes(full)
    assert boxes.index("mdat") < boxes.index("moov"), boxes
    return full


def test_truncated_mp4_with_index_at_the_end_is_refused(tmp_path, twenty_seconds):
    cut = _cut_in_half(twenty_seconds, tmp_path / "cut.mp4")
    assert "moov" not in _top_level_boxes(cut)
    with _unchanged(cut):
        _assert_one_line_error(run_cli(cut, "--format", "srt,json"), "cut.mp4")
    assert _listing(tmp_path) == ["cut.mp4", "full.mp4"]


def test_truncated_faststart_mp4_decodes_what_is_there(tmp_path, ffmpeg, twenty_seconds):
    fast = tmp_path / "fast.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(twenty_seconds), "-c", "copy", "-movflags", "+faststart",
                    str(fast)], check=True)
    boxes = _top_level_boxes(fast)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    cut = _cut_in_half(fast, tmp_path / "half.mp4")
    with _unchanged(cut):
        proc = run_cli(cut, "--format", "srt,json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dramapic-subs: warning: ") and "half.mp4" in lines[0], lines[0]
    doc = json.loads((tmp_path / "half.json").read_text(encoding="utf-8"))
    assert 6.0 < doc["duration"] < 14.0, doc["duration"]  # about half of the 20 s
    windows = doc["windows"]
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(doc["duration"], abs=1e-3)
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(windows, windows[1:]))
    assert sum(not w["silence"] for w in windows) >= len(windows) - 1  # the decoded tone is analysed
    assert (tmp_path / "half.srt").read_text(encoding="utf-8").startswith("1\n")


# --- Ctrl-C ----------------------------------------------------------------------------------


def _child_commands(pid: int) -> list[str]:
    """Command lines of the processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            if ppid == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode("utf-8", "replace"))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _ctrl_c_when(args: list, ready, *, settle_s: float, timeout_s: float = 120.0):
    """Start the CLI in its own process group, wait for ``ready()``, then send SIGINT to the
    whole group as a terminal's Ctrl-C does (ffmpeg gets it too). Returns (proc, stderr)."""
    # A test run started in the background (``pytest &``, some CI runners) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: give the CLI the default
    # disposition a terminal's foreground program has.
    proc = subprocess.Popen([sys.executable, "-m", "dramapic_subs", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + timeout_s
        while not ready(proc):
            assert proc.poll() is None, f"finished before the stage was reached: {proc.communicate()}"
            assert time.monotonic() < deadline, "stage never reached"
            time.sleep(0.02)
        time.sleep(settle_s)
        assert proc.poll() is None, "finished before it could be interrupted: make the input longer"
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - t0 < 20, "took too long to stop after Ctrl-C"
        return proc, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _assert_interrupted(proc, err: str, out_dir: Path) -> None:
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dramapic-subs: ") and "interrupted" in lines[0], err
    leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith(".dramapic-") or p.name.endswith(".subtitled.mp4")]
    assert leftovers == []


def test_ctrl_c_during_analysis(tmp_path, ffmpeg):
    src = tmp_path / "in" / "long.wav"
    src.parent.mkdir()
    # 15 minutes: several seconds of analysis, made in about a second.
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"sine=f=220:r={SR}:d=900", "-f", "lavfi",
                    "-i", f"anoisesrc=r={SR}:a=0.05:d=900", "-filter_complex", "amix=inputs=2", "-ac", "1",
                    "-c:a", "pcm_s16le", str(src)], check=True)
    out = tmp_path / "out"
    out.mkdir()
    decoding = lambda proc: any("pcm_f32le" in c for c in _child_commands(proc.pid))  # noqa: E731
    with _unchanged(src):
        proc, err = _ctrl_c_when([src, "-o", out, "--format", "srt,vtt,json", "--burn"], decoding, settle_s=1.0)
    _assert_interrupted(proc, err, out)
    assert _listing(out) == []  # interrupted before any caption was complete
    assert _listing(src.parent) == ["long.wav"]


def test_ctrl_c_during_burning(tmp_path, ffmpeg):
    src = tmp_path / "in" / "clip.mp4"
    src.parent.mkdir()
    # 40 s of 640x360 at 25 fps: a few seconds of x264 'veryfast' under libass on 2 cores.
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=40", "-f", "lavfi",
                    "-i", "sine=f=330:r=44100:d=40", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src)], check=True)
    out = tmp_path / "out"
    out.mkdir()

    def burning(proc) -> bool:
        return (out / "clip.srt").exists() and any("subtitles=" in c for c in _child_commands(proc.pid))

    with _unchanged(src):
        proc, err = _ctrl_c_when([src, "-o", out, "--burn"], burning, settle_s=0.5)
    _assert_interrupted(proc, err, out)
    # The captions were finished (and renamed into place) before the burn began; they stay.
    assert _listing(out) == ["clip.srt"]
    assert (out / "clip.srt").read_text(encoding="utf-8").startswith("1\n")
    assert _listing(src.parent) == ["clip.mp4"]


def test_window_as_long_as_the_hop_on_a_file_just_past_a_cue(tmp_path):
    """--window 1 --hop 1 on a file one sample past a whole second: the last cue's window
    holds no frame centre of the 1024-point analysis (it used to end in a traceback)."""
    import soundfile as sf

    src = tmp_path / "edge.wav"
    sf.write(src, tone(1.0 + 1 / SR, 220.0), SR)
    with _unchanged(src):
        proc = run_cli(src, "--window", "1", "--hop", "1", "--format", "json", "--quiet")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    doc = json.loads((tmp_path / "edge.json").read_text(encoding="utf-8"))
    assert [w["end"] for w in doc["windows"]] == [1.0, pytest.approx(1.0 + 1 / SR, abs=1e-3)]
    assert all(w["sound_type"] and abs(sum(w["sound_type"].values()) - 1) < 1e-3 for w in doc["windows"])


def test_ctrl_c_while_the_command_line_imports_is_one_line(tmp_path):
    # A Ctrl-C in the first half second lands in the imports of typer, rich and numpy;
    # simulate it by making the import of typer raise KeyboardInterrupt.
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name == 'typer':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "import dramapic_subs\n"
            "dramapic_subs.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    _assert_interrupted(proc, proc.stderr, tmp_path)


def test_the_wheels_ffmpeg_is_found_without_running_it(monkeypatch):
    import imageio_ffmpeg

    from dramapic_subs import media

    expected = imageio_ffmpeg.get_ffmpeg_exe()
    cached = getattr(getattr(imageio_ffmpeg, "_utils", None), "_get_ffmpeg_exe", None)
    if hasattr(cached, "cache_clear"):
        cached.cache_clear()  # else imageio-ffmpeg would answer from memory without launching anyway
    monkeypatch.delenv(media.FFMPEG_ENV, raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)

    def no_launch(*args, **kwargs):
        raise AssertionError(f"find_ffmpeg launched {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", no_launch)
    assert media.find_ffmpeg() == expected


def test_an_ffmpeg_that_cannot_run_is_one_line(tmp_path, short_clip):
    fake = tmp_path / "ffmpeg"
    fake.write_bytes(b"\x7fELF not really a program")
    fake.chmod(0o755)
    with _unchanged(short_clip):
        proc = run_cli(short_clip, "-o", tmp_path, "--ffmpeg", fake)
    _assert_one_line_error(proc, "cannot run ffmpeg")
    assert not list(tmp_path.glob("short*.srt"))


def test_inputs_whose_outputs_would_collide_keep_the_first(tmp_path, ffmpeg):
    """clip.mkv and clip.mp4 side by side both make clip.json: the later one is skipped with one line
    (run side by side, the later writer used to replace the other's captions, whichever finished last)."""
    from .conftest import white_noise

    folder = tmp_path / "in"
    folder.mkdir()
    first = mux(ffmpeg, white_noise(3.0), folder / "clip.mkv")
    second = mux(ffmpeg, tone(3.0), folder / "clip.mp4")
    with _unchanged(first, second):
        proc = run_cli(folder, "-f", "json", "-j", "2", "-q")
    _assert_one_line_error(proc, "clip.mp4: skipped", "clip.mkv")
    assert proc.returncode == 1
    assert _listing(folder) == ["clip.json", "clip.mkv", "clip.mp4", "clip.srt"]
    assert json.loads((folder / "clip.json").read_text())["source"].endswith("clip.mkv")


def test_run_batch_reports_a_colliding_input_before_any_work(tmp_path, ffmpeg):
    """The Python API (and a Dask cluster behind it) gets the same guard as the CLI."""
    from dramapic_subs.pipeline import Options, load_models, run_batch

    first = mux(ffmpeg, tone(2.0), tmp_path / "clip.mkv")
    second = tmp_path / "clip.mp4"  # never opened: were it processed, a missing file would fail on its own
    reports = list(run_batch([first, second], Options(formats=("srt",)), load_models(), jobs=2))
    assert [(r.source, r.status) for r in reports] == [(second, "failed"), (first, "done")]
    assert "would overwrite those of" in reports[0].message and str(first) in reports[0].message
    assert _listing(tmp_path) == ["clip.mkv", "clip.srt"]
