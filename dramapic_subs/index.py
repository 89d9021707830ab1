"""The review index of a batch: one row per clip, linking to its review page.

Each row shows the clip's thumbnail, duration, video-type hint, shares of
time and voices; a click on a column's header sorts by it (again: the other
way). The rows are read back from the review pages' JSON blocks, so clips
skipped as up to date are listed as well as those just analysed. One
self-contained file: no network, no external script or style.
"""
from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path

from .errors import ParameterError
from .media import atomic_output
from .review import read_meta

INDEX_NAME = "index.html"
GENERATOR = '<meta name="generator" content="dramapic-subs">'
SHARES = ("speech", "song", "music", "noise", "nature", "silence")
VOICES = ("female", "male")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem} table{border-collapse:collapse} td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;user-select:none;background:#f4f4f4;position:sticky;top:0} th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"} td.clip,th.clip,td.type{text-align:left}
td.clip{white-space:nowrap} td.clip img{width:120px;vertical-align:middle;margin-right:.6rem;background:#000} .reason{color:#666;font-size:.85em}
"""

# Sort by each cell's data-sort (numbers where they all are), ascending on the
# first click of a header and flipping on the next; ties keep their order.
_SCRIPT = """
const table = document.getElementById('clips');
table.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
  const ascending = th.getAttribute('aria-sort') !== 'ascending';
  table.querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  const body = table.tBodies[0];
  const rows = [...body.rows];
  const key = r => r.cells[col].dataset.sort;
  const numeric = rows.every(r => key(r) !== '' && !isNaN(key(r)));
  rows.sort((a, b) => {
    const d = numeric ? key(a) - key(b) : key(a).localeCompare(key(b));
    return ascending ? d : -d;
  });
  rows.forEach(r => body.appendChild(r));
}));
"""


def index_path(pages: list[Path], out_dir: Path | None) -> Path:
    """``index.html`` in the output folder, or in the folder that holds all the pages."""
    folder = out_dir or Path(os.path.commonpath([p.resolve().parent for p in pages]))
    return folder / INDEX_NAME


def write_index(pages: list[Path], out: Path, *, overwrite: bool = False) -> Path:
    """Write the index of ``pages`` (review pages) to ``out``, atomically.

    An earlier index of ours is replaced; any other file of that name only
    with ``overwrite``.

    Raises
    ------
    ParameterError
        If ``out`` exists, was not written by dramapic-subs, and not ``overwrite``.
    """
    if out.exists() and not overwrite and GENERATOR not in out.read_text(encoding="utf-8", errors="replace"):
        raise ParameterError(f"{out} exists and is not a dramapic-subs index (use --overwrite to replace it)")
    rows = "\n".join(_row(page, out.parent) for page in sorted(pages, key=lambda p: p.name.lower()))
    head = "".join(f"<th>{h}</th>" for h in ("duration", "looks like", *SHARES, *(f"{v} voice" for v in VOICES)))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>Review index · dramapic-subs</title>
<style>{_STYLE}</style></head>
<body>
<h1>{len(pages)} clips</h1>
<p>Shares of time by likeliest sound type; voices as shares of speech time. Click a header to sort.</p>
<table id="clips"><thead><tr><th class="clip">clip</th>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""
    with atomic_output(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def _row(page: Path, folder: Path) -> str:
    meta = read_meta(page)
    s = meta["summary"]
    href = html.escape(urllib.parse.quote(Path(os.path.relpath(page.resolve(), folder.resolve())).as_posix()))
    name = html.escape(meta["source"])
    thumb = f'<img alt="" src="{meta["thumbnail"]}">' if meta.get("thumbnail") else ""
    cells = [f'<td class="clip" data-sort="{name}"><a href="{href}">{thumb}{name}</a></td>',
             f'<td data-sort="{s["duration_s"]:.3f}">{_clock(s["duration_s"])}</td>',
             f'<td class="type" data-sort="{html.escape(s["video_type"])}" title="{html.escape(s["reason"])}">'
             f'{html.escape(s["video_type"])}</td>']
    cells += [_pct_cell(s["shares"].get(k)) for k in SHARES]
    cells += [_pct_cell((s["voices"] or {}).get(k)) for k in VOICES]
    return "<tr>" + "".join(cells) + "</tr>"


def _pct_cell(x: float | None) -> str:
    """A share as a percentage; no speech, no voice share: a dash that sorts first."""
    if x is None:
        return '<td data-sort="-1">-</td>'
    return f'<td data-sort="{x:.4f}">{100 * x:.0f}%</td>'


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
