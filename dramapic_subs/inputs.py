"""Which files to process: plain paths, folders (searched recursively) and globs."""
from __future__ import annotations

import glob
from pathlib import Path

MEDIA_EXTENSIONS = frozenset({
    # video
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".3gp", ".ogv",
    # audio
    ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff",
})
GLOB_CHARS = set("*?[")


def expand_inputs(args: list[Path]) -> tuple[list[Path], list[str]]:
    """Turn the command line's inputs into files, in order, without duplicates.

    A folder contributes every file below it with a video or audio
    extension; an argument that does not exist but holds ``* ? [`` is a glob
    (``**`` spans folders). Plain files are kept whatever their extension,
    and missing ones too, so that each fails with its own clear message.

    Returns
    -------
    files : list of Path
    problems : list of str
        One message per folder or glob that matched no media.
    """
    files: list[Path] = []
    problems: list[str] = []
    for arg in args:
        if arg.is_dir():
            found = sorted(p for p in arg.rglob("*") if p.is_file() and _is_media(p))
            if not found:
                problems.append(f"{arg}: folder holds no video or audio files")
        elif not arg.exists() and GLOB_CHARS & set(str(arg)):
            found = sorted(Path(p) for p in glob.glob(str(arg), recursive=True) if Path(p).is_file())
            if not found:
                problems.append(f"{arg}: no file matches")
        else:
            found = [arg]
        files.extend(found)
    unique = list(dict.fromkeys(files))
    return unique, problems


def _is_media(path: Path) -> bool:
    # Our own outputs are media too; feeding them back in would caption captions.
    name = path.name.lower()
    return path.suffix.lower() in MEDIA_EXTENSIONS and not name.endswith((".subtitled.mp4", ".captioned.mp4"))

