"""Where captions sit on the picture and how large they are.

One setting for every place captions are drawn: burned in (libass), embedded
(mov_text) and the review page's player, so all three look alike.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterError

POSITIONS = ("bottom", "top")
DEFAULT_FONT_SIZE = 6.0  # percent of the picture height
FONT_SIZE_RANGE = (2.0, 20.0)
SCRIPT_HEIGHT = 288  # libass's default script height: sizes scale from it to the frame


@dataclass(frozen=True)
class Placement:
    """Caption position and size.

    Attributes
    ----------
    position : {"bottom", "top"}
        ``top`` keeps a video's own (bottom) subtitles readable.
    font_size : float
        Text height in percent of the picture height (2-20), whatever the
        resolution.
    """

    position: str = "bottom"
    font_size: float = DEFAULT_FONT_SIZE

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ParameterError(f"--position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        lo, hi = FONT_SIZE_RANGE
        if not lo <= self.font_size <= hi:
            raise ParameterError(f"--font-size must be between {lo:g} and {hi:g} (% of the picture height), "
                                 f"got {self.font_size:g}")

    @property
    def script_font_size(self) -> float:
        """Font size in libass script units (of a 288-line script)."""
        return round(self.font_size * SCRIPT_HEIGHT / 100, 2)

    @property
    def ass_alignment(self) -> int:
        """ASS numpad alignment: 2 bottom centre, 8 top centre."""
        return 8 if self.position == "top" else 2
