"""Captions into the video: burned in with libass, or embedded as a soft track.

Burning is one encode pass in ffmpeg's ``subtitles`` filter; no frame ever
crosses into Python. Embedding adds a selectable mov_text track and copies
video and audio untouched. The captions
and the shipped font are copied into a private temporary folder first, so the
filter string only ever names safe paths: whatever characters the user's
file names hold (quotes, colons, commas, brackets, Hangul), the filter
graph's two levels of escaping never see them.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import captions
from .media import MediaInfo, atomic_output, ffmpeg_path_arg, run_ffmpeg
from .progress import Progress
from .result import Analysis

FONT_FILE = Path(__file__).resolve().parent / "fonts" / "DramapicSans-Bold.ttf"
FONT_NAME = "Dramapic Sans"
# Sizes are in libass's default 384x288 script space, which it scales to the
# frame: the same share of the picture from 360p to 1080p.
STYLE = ",".join([
    f"FontName={FONT_NAME}", "FontSize=17", "Bold=0", "PrimaryColour=&H00FFFFFF", "OutlineColour=&H00000000",
    "BackColour=&H80000000", "BorderStyle=1", "Outline=1.6", "Shadow=0.8", "MarginV=14", "Alignment=2",
])
BLANK_VIDEO = "1280x720"  # canvas for audio-only inputs
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}  # copied as is into mp4


def subtitles_filter(folder: Path, *, even: bool) -> str:
    """The ``-vf`` graph: libass over the frame (after evening odd sizes for x264)."""
    sub = (f"subtitles=filename={folder / 'captions.srt'}:fontsdir={folder / 'fonts'}"
           f":charenc=UTF-8:force_style='{STYLE}'")
    return sub if even else "scale=trunc(iw/2)*2:trunc(ih/2)*2," + sub


def burn(src: Path, analysis: Analysis, out: Path, *, lang: str, ffmpeg: str, info: MediaInfo,
         progress: Progress | None = None) -> Path:
    """Write ``out``: the input's video with captions burned in, audio copied.

    An audio-only input gets a black 1280x720 canvas under the captions.
    The file appears under its final name only once ffmpeg has finished.
    """
    progress = progress or Progress(quiet=True)
    task = progress.task(f"burning {out.name}", total=analysis.duration_s)
    with tempfile.TemporaryDirectory(prefix="dramapic-burn-") as tmp:
        folder = Path(tmp)
        captions.write(analysis, "srt", folder / "captions.srt", lang=lang)
        (folder / "fonts").mkdir()
        shutil.copy(FONT_FILE, folder / "fonts" / FONT_FILE.name)
        with atomic_output(out) as part:
            run_ffmpeg(_burn_args(src, part, folder, info, analysis.duration_s), ffmpeg=ffmpeg,
                       duration_s=analysis.duration_s, on_progress=lambda s: progress.update(task, s),
                       what=f"burning {src.name}")
    progress.update(task, analysis.duration_s)
    return out


def _burn_args(src: Path, part: Path, folder: Path, info: MediaInfo, duration_s: float) -> list[str]:
    args = ["-y", "-i", ffmpeg_path_arg(src)]
    if info.has_video:
        even = info.width % 2 == 0 and info.height % 2 == 0
        video_map = "0:v:0"
    else:
        args += ["-f", "lavfi", "-i", f"color=c=black:s={BLANK_VIDEO}:r=25:d={duration_s:.3f}"]
        even, video_map = True, "1:v:0"
    audio = ["-c:a", "copy"] if info.audio_codec in MP4_AUDIO else ["-c:a", "aac", "-b:a", "192k"]
    return [
        *args, "-map", video_map, "-map", "0:a:0",
        "-vf", subtitles_filter(folder, even=even),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        *audio, "-movflags", "+faststart", "-f", "mp4", ffmpeg_path_arg(part),
    ]


LANG_TAGS = {"en": "eng", "ko": "kor"}


def embed(src: Path, analysis: Analysis, out: Path, *, lang: str, ffmpeg: str, info: MediaInfo,
          progress: Progress | None = None) -> Path:
    """Write ``out``: the input's streams copied, plus the captions as a mov_text track."""
    progress = progress or Progress(quiet=True)
    task = progress.task(f"embedding {out.name}", total=analysis.duration_s)
    with tempfile.TemporaryDirectory(prefix="dramapic-embed-") as tmp:
        srt = Path(tmp) / "captions.srt"
        captions.write(analysis, "srt", srt, lang=lang)
        with atomic_output(out) as part:
            run_ffmpeg(_embed_args(src, srt, part, info, lang), ffmpeg=ffmpeg, duration_s=analysis.duration_s,
                       on_progress=lambda s: progress.update(task, s), what=f"embedding into {src.name}")
    progress.update(task, analysis.duration_s)
    return out


def _embed_args(src: Path, srt: Path, part: Path, info: MediaInfo, lang: str) -> list[str]:
    """Stream-copy command built with ffmpeg-python, whose stream selectors spell the -map options."""
    import ffmpeg as ffmpeg_python

    media = ffmpeg_python.input(ffmpeg_path_arg(src))
    subs = ffmpeg_python.input(str(srt), sub_charenc="UTF-8")
    streams = ([media["v:0"]] if info.has_video else []) + [media["a:0"], subs["0"]]
    audio = {"acodec": "copy"} if info.audio_codec in MP4_AUDIO else {"acodec": "aac", "audio_bitrate": "192k"}
    out = ffmpeg_python.output(*streams, ffmpeg_path_arg(part), vcodec="copy", scodec="mov_text", f="mp4",
                               movflags="+faststart", **audio,
                               **{"metadata:s:s:0": f"language={LANG_TAGS.get(lang, 'und')}"})
    return ["-y", *out.compile(cmd="ffmpeg")[1:]]
