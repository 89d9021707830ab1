"""Build dramapic_subs/fonts/DramapicSans-Bold.ttf, the caption font.

A subset of NanumGothic Bold (SIL OFL 1.1, Debian package fonts-nanum) holding
printable ASCII, Latin-1 and the Hangul of the Korean caption labels, so
captions render the same on every machine, Korean included, without any
system font. The OFL reserves the name "NanumGothic" for the unmodified font,
so the subset is renamed.

    apt-get install fonts-nanum && pip install fonttools
    python tools/make_font.py
"""
from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dramapic_subs.captions import LABELS  # noqa: E402

SOURCE = Path("/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf")
TARGET = ROOT / "dramapic_subs" / "fonts" / "DramapicSans-Bold.ttf"
FAMILY = "Dramapic Sans"


def main() -> None:
    text = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0xA0, 0x100))
    text += "·–—…%()|" + "".join(v for names in LABELS.values() for v in names.values())
    opts = subset.Options()
    opts.name_IDs = ["*"]
    font = TTFont(SOURCE)
    sub = subset.Subsetter(opts)
    sub.populate(text=text)
    sub.subset(font)
    for rec in font["name"].names:
        if rec.nameID in (1, 16):
            rec.string = FAMILY
        elif rec.nameID == 4:
            rec.string = f"{FAMILY} Bold"
        elif rec.nameID == 6:
            rec.string = "DramapicSans-Bold"
        elif rec.nameID == 3:
            rec.string = "DramapicSans-Bold;subset of NanumGothicBold"
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(TARGET)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes, {len(set(text))} characters)")


if __name__ == "__main__":
    main()
