"""Captions into the video: burned in with libass, or embedded as a soft track.

Burning is one encode pass in ffmpeg's ``subtitles`` filter; no frame ever
crosses into Python. Embedding adds a selectable mov_text track and copies
video and audio untouched. Both read one ASS file whose style carries the
placement (position, font size), so burned and embedded captions match. The
captions and the shipped font are written into a private temporary folder first, so the
filter string only ever names safe paths: whatever characters the user's
file names hold (quotes, colons, commas, brackets, Hangul), the filter
graph's two levels of escaping never see them.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import captions
from .errors import MediaError
from .media import MediaInfo, atomic_output, ffmpeg_path_arg, run_ffmpeg
from .placement import SCRIPT_HEIGHT, Placement
from .progress import Progress
from .result import Analysis

FONT_FILE = Path(__file__).resolve().parent / "fonts" / "DramapicSans-Bold.ttf"
FONT_NAME = "Dramapic Sans"
# Sizes are in libass's default 384x288 script space, which it scales to the
# frame: the same share of the picture from 360p to 1080p.
SCRIPT_WIDTH = 384
BLANK_VIDEO = "1280x720"  # canvas for audio-only inputs
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}  # copied as is into mp4
_MOOV_SEARCH_BYTES = 1 << 24  # a faststart moov, sample tables of a long film included, fits in 16 MB
_STYLE_FIELDS = ("Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
                 "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
                 "Alignment, MarginL, MarginR, MarginV, Encoding")


def write_ass(analysis: Analysis, path: Path, *, lang: str, placement: Placement) -> Path:
    """The captions as an ASS script styled by ``placement`` (white on a thin outline)."""
    style = (f"Style: Default,{FONT_NAME},{placement.script_font_size:g},&H00FFFFFF,&H00FFFFFF,&H00000000,"
             f"&H80000000,0,0,0,0,100,100,0,0,1,1.6,0.8,{placement.ass_alignment},10,10,14,1")
    events = [f"Dialogue: 0,{_ass_time(a)},{_ass_time(b)},Default,,0,0,0,,{_ass_text(text)}"
              for a, b, text in zip(analysis.start_s, analysis.end_s, captions.cue_texts(analysis, lang=lang))]
    lines = ["[Script Info]", "ScriptType: v4.00+", f"PlayResX: {SCRIPT_WIDTH}", f"PlayResY: {SCRIPT_HEIGHT}",
             "ScaledBorderAndShadow: yes", "", "[V4+ Styles]", f"Format: {_STYLE_FIELDS}", style, "",
             "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text", *events]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ass_time(seconds: float) -> str:
    cs = int(round(float(seconds) * 100))  # ASS counts centiseconds
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _ass_text(text: str) -> str:
    """Plain text as ASS event text: braces would open override blocks, newlines are ``\\N``."""
    return text.replace("{", "(").replace("}", ")").replace("\n", "\\N")


def subtitles_filter(folder: Path, *, even: bool) -> str:
    """The ``-vf`` graph: libass over the frame (after evening odd sizes for x264)."""
    sub = f"subtitles=filename={folder / 'captions.ass'}:fontsdir={folder / 'fonts'}:charenc=UTF-8"
    return sub if even else "scale=trunc(iw/2)*2:trunc(ih/2)*2," + sub


def burn(src: Path, analysis: Analysis, out: Path, *, lang: str, ffmpeg: str, info: MediaInfo,
         placement: Placement = Placement(), progress: Progress | None = None) -> Path:
    """Write ``out``: the input's video with captions burned in, audio copied.

    An audio-only input gets a black 1280x720 canvas under the captions.
    The file appears under its final name only once ffmpeg has finished.
    """
    progress = progress or Progress(quiet=True)
    task = progress.task(f"burning {out.name}", total=analysis.duration_s)
    with tempfile.TemporaryDirectory(prefix="dramapic-burn-") as tmp:
        folder = Path(tmp)
        write_ass(analysis, folder / "captions.ass", lang=lang, placement=placement)
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
          placement: Placement = Placement(), progress: Progress | None = None) -> Path:
    """Write ``out``: the input's streams copied, plus the captions as a mov_text track.

    The track's sample description carries the placement's font size and
    top/bottom justification, which players that honour tx3g styling apply.
    """
    progress = progress or Progress(quiet=True)
    task = progress.task(f"embedding {out.name}", total=analysis.duration_s)
    with tempfile.TemporaryDirectory(prefix="dramapic-embed-") as tmp:
        ass = write_ass(analysis, Path(tmp) / "captions.ass", lang=lang, placement=placement)
        with atomic_output(out) as part:
            run_ffmpeg(_embed_args(src, ass, part, info, lang), ffmpeg=ffmpeg, duration_s=analysis.duration_s,
                       on_progress=lambda s: progress.update(task, s), what=f"embedding into {src.name}")
            if placement.position == "top":
                set_tx3g_top(part)
    progress.update(task, analysis.duration_s)
    return out


def set_tx3g_top(path: Path) -> None:
    """Justify the mov_text track's text box to the top of the picture, in place.

    ffmpeg's mov_text encoder always writes "bottom" into the track's tx3g
    sample description (3GPP TS 26.245: vertical-justification 0 top, 1
    centre, -1 bottom) whatever the ASS style says. The field is one byte at
    a fixed offset in the moov box (at the front: ``+faststart``), so it is
    set without moving anything else.
    """
    with open(path, "r+b") as f:
        head = f.read(_MOOV_SEARCH_BYTES)
        at = head.find(b"tx3g")
        if at < 4 or head.find(b"moov") < 0:
            raise MediaError(f"{path}: no mov_text sample description to place at the top")
        # 'tx3g', 6 reserved bytes, data reference index (2), display flags (4), horizontal, vertical.
        f.seek(at + 4 + 6 + 2 + 4 + 1)
        f.write(b"\x00")


def _embed_args(src: Path, ass: Path, part: Path, info: MediaInfo, lang: str) -> list[str]:
    """Stream-copy command built with ffmpeg-python, whose stream selectors spell the -map options."""
    import ffmpeg as ffmpeg_python

    media = ffmpeg_python.input(ffmpeg_path_arg(src))
    subs = ffmpeg_python.input(str(ass), sub_charenc="UTF-8")
    streams = ([media["v:0"]] if info.has_video else []) + [media["a:0"], subs["0"]]
    audio = {"acodec": "copy"} if info.audio_codec in MP4_AUDIO else {"acodec": "aac", "audio_bitrate": "192k"}
    out = ffmpeg_python.output(*streams, ffmpeg_path_arg(part), vcodec="copy", scodec="mov_text", f="mp4",
                               movflags="+faststart", **audio,
                               **{"metadata:s:s:0": f"language={LANG_TAGS.get(lang, 'und')}"})
    return ["-y", *out.compile(cmd="ffmpeg")[1:]]
