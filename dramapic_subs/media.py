"""Media input and output: the one place where ffmpeg runs.

ffmpeg comes from the ``imageio-ffmpeg`` wheel unless the user names another
binary (``--ffmpeg`` or the ``DRAMAPIC_FFMPEG`` environment variable). Audio
is decoded to mono float32 at the analysis rate and streamed in blocks, so a
three-hour file never sits in memory as a whole.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .errors import MediaError

FFMPEG_ENV = "DRAMAPIC_FFMPEG"


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says of a media file.

    Attributes
    ----------
    duration_s : float
        Container duration in seconds (0.0 where ffmpeg gives none).
    has_audio, has_video : bool
        Whether an audio / video stream is present (cover art does not count).
    width, height : int
        Frame size in pixels of the first video stream (0 without video).
    """

    duration_s: float
    has_audio: bool
    has_video: bool
    width: int = 0
    height: int = 0
    audio_codec: str = ""


def find_ffmpeg(explicit: str | None = None) -> str:
    """Return the ffmpeg executable to use.

    Parameters
    ----------
    explicit : str or None
        A path given by the user; else ``$DRAMAPIC_FFMPEG``; else the binary
        shipped in the ``imageio-ffmpeg`` wheel.
    """
    chosen = explicit or os.environ.get(FFMPEG_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise MediaError(f"ffmpeg not found or not executable: {chosen}")
        return chosen
    wheel = _wheel_ffmpeg()
    if wheel:
        return wheel
    import imageio_ffmpeg  # deferred: only needed when nothing was named

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # the wheel lacks a binary for this platform
        raise MediaError(f"no ffmpeg available: {exc}") from None


def _wheel_ffmpeg() -> str | None:
    """The binary inside the imageio-ffmpeg wheel, found without running it; None if not found so.

    ``imageio_ffmpeg.get_ffmpeg_exe()`` first runs ``ffmpeg -version`` to
    check the binary: one more process launch (~20 ms) at every start. The
    probe runs it anyway and turns a binary that cannot run into a clear
    error. The wheel's layout is read through its private helpers, so any
    other layout, or ``IMAGEIO_FFMPEG_EXE`` set, falls back to
    ``get_ffmpeg_exe()``.
    """
    if os.environ.get("IMAGEIO_FFMPEG_EXE"):
        return None
    try:
        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform
        from imageio_ffmpeg._utils import _get_bin_dir

        name = FNAME_PER_PLATFORM.get(get_platform())
        exe = os.path.join(_get_bin_dir(), name) if name else ""
    except Exception:  # another release's layout: ask imageio-ffmpeg the documented way
        return None
    return exe if exe and os.path.isfile(exe) and os.access(exe, os.X_OK) else None


def ffmpeg_path_arg(path: str | os.PathLike) -> str:
    """Spell a local path so ffmpeg never mistakes it for an option or protocol.

    A name such as ``-x.mp4`` or ``clip:1.mp4`` would otherwise be read as a
    flag or as the protocol ``clip``.
    """
    return "file:" + os.path.abspath(os.fspath(path))


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Audio|Video): (.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")


def probe(path: str | os.PathLike, *, ffmpeg: str) -> MediaInfo:
    """Read duration and streams of a media file with ``ffmpeg -i``.

    Raises
    ------
    MediaError
        If the file is missing, not a file, or not media ffmpeg can open.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if not p.is_file():
        raise MediaError(f"{p}: not a file")
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-i", ffmpeg_path_arg(p)],
            capture_output=True, text=True, errors="replace",
        )
    except OSError as exc:  # not executable, wrong architecture, ...
        raise MediaError(f"cannot run ffmpeg ({ffmpeg}): {exc.strerror or exc}") from None
    text = proc.stderr
    streams = _STREAM.findall(text)
    if not streams:
        raise MediaError(f"{p}: not a media file ffmpeg can read ({_last_line(text)})")
    info = _parse_info(text, streams)
    return info


def _parse_info(text: str, streams: list[tuple[str, str]]) -> MediaInfo:
    m = _DURATION.search(text)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    has_audio = any(kind == "Audio" for kind, _ in streams)
    # Cover art in audio files shows up as a still "Video" stream.
    video = [d for kind, d in streams if kind == "Video" and "attached pic" not in d]
    audio = [d for kind, d in streams if kind == "Audio"]
    audio_codec = audio[0].split(",")[0].split()[0] if audio else ""
    width = height = 0
    if video:
        size = _SIZE.search(video[0])
        if size:
            width, height = int(size[1]), int(size[2])
    return MediaInfo(duration, has_audio, bool(video), width, height, audio_codec)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def iter_audio(
    path: str | os.PathLike,
    *,
    ffmpeg: str,
    sr: int,
    block_s: float = 30.0,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Decode the first audio stream to mono float32 and yield it in blocks.

    Parameters
    ----------
    path : path
        Media file with an audio stream.
    ffmpeg : str
        ffmpeg executable.
    sr : int
        Output sample rate in Hz.
    block_s : float
        Block length in seconds; memory use is bounded by it, not by the file.
    on_warning : callable or None
        Told when ffmpeg fails part-way (a truncated or corrupt file): the
        audio decoded up to that point is kept and analysed.

    Yields
    ------
    np.ndarray, shape (n,), float32
        Consecutive blocks (the last one may be shorter).

    Raises
    ------
    MediaError
        If ffmpeg fails before producing any audio.
    """
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", ffmpeg_path_arg(path),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sr),
        "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    block_bytes = int(block_s * sr) * 4
    got = 0
    with _spawn(cmd) as run:
        while True:
            data = _read_exact(run.proc.stdout, block_bytes)
            if not data:
                break
            got += len(data)
            usable = len(data) - len(data) % 4
            yield np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
    if run.returncode != 0:
        if not got:
            raise MediaError(f"{path}: ffmpeg could not decode the audio ({run.message})")
        if on_warning:
            on_warning(f"{path}: decoding stopped after {got / 4 / sr:.1f} s ({run.message}); "
                       "captions cover what was decoded")


def _read_exact(stream, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short pipe reads."""
    chunks, left = [], n
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_audio(path: str | os.PathLike, *, sr: int, ffmpeg: str | None = None) -> np.ndarray:
    """Decode a whole (short) file to mono float32 at ``sr`` Hz.

    Used by training, where files are short and many: libsndfile reads the
    corpus's Ogg Opus directly, which is ~10x faster than starting ffmpeg
    per file; anything else goes through ffmpeg.
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if info.samplerate == sr:
            y, _ = sf.read(str(path), dtype="float32", always_2d=True)
            return np.ascontiguousarray(y.mean(axis=1), dtype=np.float32)
    except (RuntimeError, sf.LibsndfileError):
        pass
    blocks = list(iter_audio(path, ffmpeg=ffmpeg or find_ffmpeg(), sr=sr))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def run_ffmpeg(
    args: Sequence[str],
    *,
    ffmpeg: str,
    duration_s: float = 0.0,
    on_progress: Callable[[float], None] | None = None,
    what: str = "ffmpeg",
) -> None:
    """Run an ffmpeg encode, reporting progress in seconds of output written.

    Parameters
    ----------
    args : sequence of str
        Arguments after the executable (inputs, filters, output).
    duration_s : float
        Expected output duration in seconds, for the progress callback.
    on_progress : callable or None
        Called with the seconds of output written so far.
    what : str
        Names the job in error messages.

    Raises
    ------
    MediaError
        If ffmpeg exits non-zero; the message carries ffmpeg's last line.
    """
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-progress", "pipe:1", *args]
    with _spawn(cmd, text=True) as run:
        for line in run.proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and on_progress and value.isdigit():
                on_progress(min(int(value) / 1e6, duration_s or float("inf")))
    if run.returncode != 0:
        raise MediaError(f"{what} failed: {run.message}")


def thumbnail(src: str | os.PathLike, out: Path, *, at_s: float, width: int, ffmpeg: str) -> Path:
    """Write one frame of ``src`` (a video, or an image) at ``at_s`` seconds as a JPEG ``width`` pixels wide."""
    args = ["-y", "-ss", f"{max(at_s, 0.0):.3f}", "-i", ffmpeg_path_arg(src), "-frames:v", "1",
            "-vf", f"scale={width}:-2", "-q:v", "5", "-f", "image2", "-c:v", "mjpeg", ffmpeg_path_arg(out)]
    run_ffmpeg(args, ffmpeg=ffmpeg, what=f"thumbnail of {Path(src).name}")
    return out


@dataclass
class _Run:
    """A running ffmpeg; ``returncode`` and ``message`` (its last stderr line) are set when it ends."""

    proc: subprocess.Popen
    returncode: int | None = None
    message: str = ""


@contextlib.contextmanager
def _spawn(cmd: list[str], *, text: bool = False) -> Iterator[_Run]:
    """Start ffmpeg with stdout piped; kill it if the caller leaves early (error, Ctrl-C, generator closed).

    stderr goes to a file: a corrupt input can print more than a pipe holds.
    """
    with tempfile.TemporaryFile() as err, subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=text
    ) as proc:
        run = _Run(proc)
        try:
            yield run
        finally:
            if proc.poll() is None:
                proc.kill()
            run.returncode = proc.wait()
            if run.returncode != 0:
                err.seek(0)
                run.message = _last_line(err.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any error (including Ctrl-C) the temporary file is removed, so no
    half-written output is ever left under the final name.
    """
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".dramapic-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def codec_roundtrip(y: np.ndarray, *, sr: int, codec: str, bitrate: str, ffmpeg: str) -> np.ndarray:
    """Encode ``y`` with a lossy codec and decode it back (training augmentation).

    Parameters
    ----------
    codec : {"mp3", "aac", "opus"}
    bitrate : str
        ffmpeg bitrate, e.g. ``"32k"``.

    Returns
    -------
    np.ndarray, float32, same length as ``y`` (padded or cut: codecs add delay).
    """
    # codec -> (encoder, muxer, demuxer)
    encoders = {"mp3": ("libmp3lame", "mp3", "mp3"), "aac": ("aac", "adts", "aac"),
                "opus": ("libopus", "ogg", "ogg")}
    if codec not in encoders:
        raise MediaError(f"unknown codec {codec!r}")
    encoder, muxer, demuxer = encoders[codec]
    pcm = ["-f", "f32le", "-ar", str(sr), "-ac", "1"]
    enc = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", *pcm, "-i", "pipe:0", "-c:a", encoder, "-b:a", bitrate,
         "-f", muxer, "pipe:1"],
        input=np.asarray(y, "<f4").tobytes(), capture_output=True,
    )
    if enc.returncode != 0:
        raise MediaError(f"{codec} encode failed: {_last_line(enc.stderr.decode('utf-8', 'replace'))}")
    dec = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-f", demuxer, "-i", "pipe:0", *pcm, "pipe:1"],
        input=enc.stdout, capture_output=True,
    )
    if dec.returncode != 0:
        raise MediaError(f"{codec} decode failed: {_last_line(dec.stderr.decode('utf-8', 'replace'))}")
    out = np.frombuffer(dec.stdout[: len(dec.stdout) // 4 * 4], "<f4").astype(np.float32)
    if len(out) < len(y):
        out = np.pad(out, (0, len(y) - len(out)))
    return out[: len(y)]
