"""The review page: one self-contained HTML file per input.

It plays the video (referenced by a relative link, so a two-hour film is not
copied into the page) with the captions as a WebVTT text track, shows the
timeline PNG (inlined) and the summary, and seeks the video to the moment
clicked on the timeline. Captions sit where ``--position`` and
``--font-size`` put burned ones. No network, no external script or style.

The page also carries a small JSON block (``<script id="meta">``): the
summary and a thumbnail, which the batch index (:mod:`dramapic_subs.index`)
reads back, so an index can be rebuilt from pages written by earlier runs.
"""
from __future__ import annotations

import base64
import html
import json
import os
import urllib.parse
from pathlib import Path

from .captions import cue_texts
from .media import atomic_output
from .placement import Placement
from .plot import TimelineGeometry
from .result import Analysis
from .summary import Summary

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1400px;color:#222;padding:0 1rem}
h1{font-size:1.3rem;margin:0 0 .8rem} video{width:100%;max-height:60vh;background:#000;display:block}
#timeline{position:relative;margin-top:.8rem;cursor:crosshair} #timeline img{width:100%;display:block}
#playhead{position:absolute;top:0;bottom:0;width:2px;background:#d00;pointer-events:none;left:0}
table{border-collapse:collapse;margin-top:1rem} td,th{padding:.25rem .8rem;border-bottom:1px solid #ddd;text-align:left}
.type{font-size:1.1rem;margin-top:1rem} .reason{color:#555}
"""

_SCRIPT = """
const video = document.getElementById('player');
const cues = JSON.parse(document.getElementById('cues').textContent);
const track = video.addTextTrack('captions', 'dramapic-subs', document.documentElement.lang);
const atTop = video.dataset.position === 'top';
for (const [start, end, text] of cues) {
  const cue = new VTTCue(start, end, text);
  if (atTop) cue.line = 0;  // first line from the top; the default is the last from the bottom
  track.addCue(cue);
}
track.mode = 'showing';
// Font size as a share of the picture's height, as burned captions have it:
// the picture is the element's box less any letterbox bars.
const cueStyle = document.getElementById('cue-style');
function sizeCues() {
  const w = video.clientWidth, h = video.clientHeight;
  const picture = video.videoWidth ? Math.min(h, w * video.videoHeight / video.videoWidth) : h;
  cueStyle.textContent = `video::cue{font-size:${(picture * video.dataset.fontSize / 100).toFixed(1)}px}`;
}
video.addEventListener('loadedmetadata', sizeCues);
window.addEventListener('resize', sizeCues);
sizeCues();
const timeline = document.getElementById('timeline');
const img = timeline.querySelector('img');
const playhead = document.getElementById('playhead');
const left = +timeline.dataset.left, right = +timeline.dataset.right, duration = +timeline.dataset.duration;
img.addEventListener('click', (event) => {
  const box = img.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width - left) / (right - left);
  if (x < 0 || x > 1) return;
  video.currentTime = x * duration;
});
function movePlayhead() {
  playhead.style.left = (100 * (left + (right - left) * video.currentTime / duration)) + '%';
}
video.addEventListener('timeupdate', movePlayhead);
video.addEventListener('seeked', movePlayhead);
"""


def write_page(analysis: Analysis, summary: Summary, timeline_png: Path, geometry: TimelineGeometry,
               out: Path, *, lang: str = "en", placement: Placement = Placement(),
               thumbnail: bytes | None = None) -> Path:
    """Write the review page for ``analysis`` to ``out`` (atomically).

    Parameters
    ----------
    thumbnail : bytes or None
        A small JPEG (a frame, or the timeline for audio): the video's poster
        and the batch index's picture.
    """
    video_href = urllib.parse.quote(Path(os.path.relpath(analysis.source.resolve(), out.parent.resolve())).as_posix())
    png = base64.b64encode(timeline_png.read_bytes()).decode("ascii")
    thumb = f"data:image/jpeg;base64,{base64.b64encode(thumbnail).decode('ascii')}" if thumbnail else ""
    meta = _script_json({"source": analysis.source.name, "summary": summary.to_dict(), "thumbnail": thumb})
    cues = [[round(float(a), 3), round(float(b), 3), text]
            for a, b, text in zip(analysis.start_s, analysis.end_s, cue_texts(analysis, lang=lang))]
    title = html.escape(analysis.source.name)
    poster = f' poster="{thumb}"' if thumb else ""
    page = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="generator" content="dramapic-subs">
<title>{title} · dramapic-subs</title>
<style>{_STYLE}</style><style id="cue-style"></style></head>
<body>
<h1>{title}</h1>
<video id="player" controls preload="auto" src="{html.escape(video_href)}"{poster}
 data-position="{placement.position}" data-font-size="{placement.font_size:g}"></video>
<div id="timeline" data-left="{geometry.left}" data-right="{geometry.right}" data-duration="{geometry.duration_s}">
<img alt="timeline of sound types and voices" src="data:image/png;base64,{png}"><div id="playhead"></div></div>
{_summary_html(summary)}
<script id="cues" type="application/json">{_script_json(cues)}</script>
<script id="meta" type="application/json">{meta}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
    with atomic_output(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def _script_json(value) -> str:
    """JSON for a ``<script>`` element: "</" inside it would end the element early."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def read_meta(page: Path) -> dict:
    """The JSON block a review page carries (source, summary, thumbnail)."""
    text = page.read_text(encoding="utf-8")
    start = text.index('<script id="meta" type="application/json">') + len('<script id="meta" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)])


def _summary_html(summary: Summary) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{100 * v:.0f}%</td></tr>" for k, v in summary.shares.items())
    voices = ""
    if summary.voices:
        voices = "".join(f"<tr><td>{html.escape(k)} voice (of speech)</td><td>{100 * v:.0f}%</td></tr>"
                         for k, v in summary.voices.items())
    stretches = ""
    for name, s in (("longest speech", summary.longest_speech), ("longest music", summary.longest_music)):
        if s is not None:
            stretches += f"<tr><td>{name}</td><td>{s.length:.0f} s ({s.start:.0f}-{s.end:.0f} s)</td></tr>"
    return (f'<section id="summary"><div class="type">Looks like: <b>{html.escape(summary.video_type)}</b> '
            f'<span class="reason">({html.escape(summary.reason)})</span></div>'
            f"<table><tr><th>share of time</th><th></th></tr>{rows}{voices}{stretches}</table></section>")
