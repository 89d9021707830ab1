"""Reviewing clips: summary and video-type hint, timeline, review page, soft subtitles,
batches (folders, globs, parallel, Dask), and the Python API."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pysrt
import pytest

import dramapic_subs
from dramapic_subs.media import probe
from dramapic_subs.pipeline import Options, load_models, run_batch

from .conftest import SR, dev_audio, mux, run_cli, tone, white_noise

GAP = np.zeros(SR // 2, np.float32)


@pytest.fixture(scope="module")
def models():
    return load_models()


def _over(speech: np.ndarray, bed: np.ndarray, snr_db: float) -> np.ndarray:
    bed = np.resize(bed, len(speech))
    scale = np.sqrt(np.mean(speech ** 2) / (np.mean(bed ** 2) * 10 ** (snr_db / 10) + 1e-12))
    return (speech + scale * bed).astype(np.float32)


@pytest.fixture(scope="module")
def typed_clips(data_dir, ffmpeg, tmp_path_factory):
    """Clips built from dev recordings whose kind of programme is known by construction."""
    folder = tmp_path_factory.mktemp("types")

    def voice(gender, seconds, offset=0.0):
        return dev_audio(data_dir, "librispeech_resemblyzer", seconds, offset=offset, gender=gender)

    def music(source, seconds, offset=30.0):
        return dev_audio(data_dir, source, seconds, offset=offset)

    clips = {
        "interview/talk": [voice("female", 8), GAP, voice("male", 8), GAP, voice("female", 8, 8), GAP,
                           voice("male", 8, 8), GAP, voice("female", 6, 16)],
        "documentary/narration": [music("zento_rusted_music", 5, 60),
                                  _over(voice("female", 36), music("zento_rusted_music", 36, 65), 12.0)],
        "music show": [dev_audio(data_dir, "mir1k_mix", 20), music("spd_music", 20)],
        "ambient/nature": [dev_audio(data_dir, "moodist", 20, offset=10, category="nature"),
                           dev_audio(data_dir, "us8k_fold10", 20, category="noise")],
        "drama": [voice("female", 6), GAP, voice("male", 6), GAP, music("spd_music", 8), voice("female", 6, 6),
                  GAP, voice("male", 6, 6), dev_audio(data_dir, "us8k_fold10", 8, category="noise")],
    }
    return {kind: mux(ffmpeg, np.concatenate(parts), folder / f"{kind.replace('/', '_')}.m4a", video=False)
            for kind, parts in clips.items()}


@pytest.mark.parametrize("kind", ["interview/talk", "documentary/narration", "music show", "ambient/nature",
                                  "drama"])
def test_video_type_hint_on_clips_of_known_type(typed_clips, models, kind):
    summary = dramapic_subs.analyze(typed_clips[kind], models=models).summary
    assert summary.video_type == kind, summary.reason
    assert summary.reason


def test_summary_shares_voices_and_stretches(drama, models):
    result = dramapic_subs.analyze(drama.path, models=models)
    s = result.summary
    assert sum(s.shares.values()) == pytest.approx(1.0)
    assert s.shares["speech"] == pytest.approx(12 / drama.duration, abs=0.08)
    assert s.shares["silence"] > 0
    assert s.voices is not None and sum(s.voices.values()) == pytest.approx(1.0)
    assert s.longest_speech.start <= 1.0 and s.longest_speech.length >= 9
    assert s.longest_music.start == pytest.approx(15.0, abs=2.0) and s.longest_music.length >= 8
    doc = result.to_dict()
    assert doc["summary"]["video_type"] == s.video_type
    assert doc["summary"]["shares"]["speech"] == pytest.approx(s.shares["speech"], abs=1e-3)


def test_python_api(drama, models, tmp_path):
    result = dramapic_subs.analyze(drama.path, models=models, lang="ko")
    assert len(result.windows) == len(result.analysis)
    assert result.windows[0]["start"] == 0.0
    subs = pysrt.from_string(result.to_srt())
    assert len(subs) == len(result.windows)
    assert "말소리" in result.to_srt()
    assert result.to_vtt().startswith("WEBVTT")
    out = result.save(tmp_path / "x.json")
    assert json.loads(out.read_text(encoding="utf-8"))["summary"]["video_type"] == result.summary.video_type
    with pytest.raises(dramapic_subs.api.captions.ParameterError):
        result.save(tmp_path / "x.docx")


@pytest.fixture(scope="module")
def reviewed(drama, tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    proc = run_cli(drama.path, "--plot", "--html", "--embed", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_timeline_png(reviewed):
    from PIL import Image

    img = np.asarray(Image.open(reviewed / "drama.timeline.png").convert("RGB")).astype(int)
    assert img.shape[1] >= 1200 and img.shape[0] >= 350
    # The stacked area is mostly the speech colour at the start and silence-grey in the gap.
    speech_blue, grey = np.array([0x4C, 0x78, 0xA8]), np.array([0xBB, 0xBB, 0xBB])
    mid = int(img.shape[0] * 0.4)
    x_at = lambda t: int(img.shape[1] * (0.06 + 0.8 * t / 37.0))  # noqa: E731
    assert np.abs(img[mid, x_at(6.0)] - speech_blue).max() < 30
    assert np.abs(img[mid, x_at(13.5)] - grey).max() < 40  # alpha-blended grey


def test_embedded_subtitles_without_reencoding(drama, reviewed, ffmpeg):
    out = reviewed / "drama.captioned.mp4"
    text = subprocess.run([ffmpeg, "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert "Subtitle: mov_text" in text
    info = probe(out, ffmpeg=ffmpeg)
    assert info.has_video and info.has_audio

    def stream_md5(path, which):
        return subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-map", f"0:{which}:0", "-c", "copy",
                               "-f", "md5", "-"], capture_output=True, text=True, check=True).stdout

    assert stream_md5(out, "v") == stream_md5(drama.path, "v")
    assert stream_md5(out, "a") == stream_md5(drama.path, "a")


def _chrome():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        pytest.skip("no Chromium browser/driver here (.ci/run installs Debian's chromium and chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000",
                 "--mute-audio"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def _open_self_contained(page):
    """The page in a headless Chromium, once it is known to need no network and no other file."""
    html = page.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html and "http" not in html
    browser = _chrome()
    try:
        browser.get(page.as_uri())
    except BaseException:
        browser.quit()
        raise
    return browser


def _wait_for_video(browser, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while browser.execute_script("return document.getElementById('player').readyState") < 2:
        assert time.time() < deadline, "video never loaded"
        time.sleep(0.2)


def test_review_page_in_a_real_browser(drama, reviewed, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser = _open_self_contained(reviewed / "drama.review.html")
    try:
        _wait_for_video(browser)
        state = browser.execute_script(
            "const v = document.getElementById('player');"
            "return [v.duration, v.textTracks.length, v.textTracks[0].mode, v.textTracks[0].cues.length]")
        assert state[0] == pytest.approx(drama.duration, abs=0.3)
        assert state[1:] == [1, "showing", len(pysrt.open(str(reviewed / "drama.srt")))]
        assert browser.execute_script("return document.getElementById('player').play().then(() => 'ok')") == "ok"
        time.sleep(1.0)
        assert browser.execute_script("return document.getElementById('player').currentTime") > 0.2
        img = browser.find_element(By.CSS_SELECTOR, "#timeline img")
        width = img.size["width"]
        target = 0.75 * drama.duration
        x = int(width * (0.06 + 0.8 * 0.75)) - width // 2  # offsets are from the element's centre
        ActionChains(browser).move_to_element_with_offset(img, x, 0).click().perform()
        time.sleep(0.5)
        now = browser.execute_script("return document.getElementById('player').currentTime")
        assert now == pytest.approx(target, abs=1.5)
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        video = browser.find_element(By.ID, "player").rect
        timeline = img.rect
    finally:
        browser.quit()
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert video["height"] > 200 and timeline["height"] > 150
    v = pixels[int(video["y"]) + 10:int(video["y"] + video["height"]) - 10, int(video["x"]) + 10:int(video["x"] + video["width"]) - 10]
    t = pixels[int(timeline["y"]):int(timeline["y"] + timeline["height"]), int(timeline["x"]):int(timeline["x"] + timeline["width"])]
    assert v.std() > 20, "the video element shows no picture"
    orange = (np.abs(t - np.array([0xF5, 0x85, 0x18])).max(axis=2) < 30).mean()
    assert orange > 0.03, "the timeline shows no music band"


def _hash(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_batch_of_folders_and_globs_in_parallel(tmp_path, ffmpeg):
    clips = tmp_path / "clips"
    (clips / "day1").mkdir(parents=True)
    a = mux(ffmpeg, tone(3.0), clips / "a.mp4")
    b = mux(ffmpeg, white_noise(3.0), clips / "day1" / "b.mp4")
    c = mux(ffmpeg, tone(2.0, 330.0), tmp_path / "c.m4a", video=False)
    (clips / "notes.txt").write_text("not media")
    bad = clips / "day1" / "broken.mp4"
    bad.write_text("not a video")
    before = {p: _hash(p) for p in (a, b, c, bad)}
    proc = run_cli(clips, tmp_path / "*.m4a", "--jobs", "2", "--format", "srt,json")
    assert proc.returncode == 1  # broken.mp4 failed ...
    assert proc.stderr.count("dramapic-subs: error:") == 1 and "broken.mp4" in proc.stderr
    for src in (a, b, c):  # ... and the others went on
        assert src.with_suffix(".srt").is_file() and src.with_suffix(".json").is_file()
    assert "a.mp4" in proc.stderr and "b.mp4" in proc.stderr and "failed" in proc.stderr  # final table
    assert not (clips / "notes.srt").exists()
    assert {p: _hash(p) for p in before} == before

    # A second run skips what is up to date, redoes a file that changed, and --overwrite redoes all.
    srt_a = a.with_suffix(".srt")
    stamp = srt_a.stat().st_mtime_ns
    os.utime(c, (time.time() + 5, time.time() + 5))  # c is now newer than its outputs
    proc = run_cli(a, c, "--format", "srt,json")
    assert "skipped" in proc.stderr and srt_a.stat().st_mtime_ns == stamp
    assert proc.returncode == 1 and "c.srt exists (use --overwrite" in proc.stderr
    proc = run_cli(a, "--format", "srt,json", "--overwrite", "--quiet")
    assert proc.returncode == 0 and srt_a.stat().st_mtime_ns != stamp


def test_folder_without_media_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli(tmp_path / "empty")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"dramapic-subs: error: {tmp_path / 'empty'}: folder holds no video or audio files"]


def test_batch_on_a_local_dask_cluster(tmp_path, ffmpeg, models):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    import joblib

    srcs = [mux(ffmpeg, tone(2.0, f), tmp_path / f"t{int(f)}.mp4") for f in (220.0, 330.0, 440.0)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with joblib.parallel_config(backend="dask"):
            reports = list(run_batch(srcs, Options(formats=("srt",)), models, jobs=-1))
    assert sorted(r.source.name for r in reports) == ["t220.mp4", "t330.mp4", "t440.mp4"]
    assert all(r.status == "done" for r in reports)
    assert all(s.with_suffix(".srt").is_file() for s in srcs)


@pytest.fixture(scope="module")
def batch(data_dir, ffmpeg, tmp_path_factory):
    """Three clips of known content and length, reviewed as one batch with captions at the top."""
    folder = tmp_path_factory.mktemp("batch")
    (folder / "in").mkdir()
    speech = mux(ffmpeg, dev_audio(data_dir, "librispeech_resemblyzer", 6.0, gender="female"), folder / "in" / "talk.mp4")
    music = mux(ffmpeg, dev_audio(data_dir, "spd_music", 9.0), folder / "in" / "score.mp4")
    noise = mux(ffmpeg, dev_audio(data_dir, "us8k_fold10", 4.0, category="noise"), folder / "in" / "street.m4a",
                video=False)
    out = folder / "out"
    out.mkdir()
    proc = run_cli(speech, music, noise, "--html", "--position", "top", "--font-size", "10", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_review_index_rows_link_and_sort_in_a_real_browser(batch):
    from selenium.webdriver.common.by import By

    browser = _open_self_contained(batch / "index.html")
    try:

        def column(n: int) -> list[str]:
            return [r.find_elements(By.TAG_NAME, "td")[n].text for r in browser.find_elements(By.CSS_SELECTOR, "#clips tbody tr")]

        headers = browser.find_elements(By.CSS_SELECTOR, "#clips th")
        names = [h.text for h in headers]
        assert names[:4] == ["clip", "duration", "looks like", "speech"] and "female voice" in names
        assert sorted(column(0)) == ["score.mp4", "street.m4a", "talk.mp4"]
        # Every thumbnail decoded (a frame, or the timeline for the audio-only clip).
        assert browser.execute_script("return [...document.images].map(i => i.naturalWidth)") == [240] * 3
        kinds = dict(zip(column(0), column(2)))
        assert kinds["score.mp4"] == "music show" and kinds["talk.mp4"] == "interview/talk"

        headers[1].click()  # duration, ascending
        assert column(0) == ["street.m4a", "talk.mp4", "score.mp4"]
        assert column(1) == ["0:04", "0:06", "0:09"]
        headers[1].click()  # again: descending
        assert column(0) == ["score.mp4", "talk.mp4", "street.m4a"]
        headers[3].click()  # speech share, ascending: the talk last
        assert column(0)[-1] == "talk.mp4" and headers[3].get_attribute("aria-sort") == "ascending"
        headers[2].click()  # video type, alphabetical
        assert column(2) == sorted(column(2))

        browser.find_element(By.LINK_TEXT, "talk.mp4").click()
        assert browser.current_url.endswith("/talk.review.html")
        _wait_for_video(browser)
        line, size, height = browser.execute_script(
            "const v = document.getElementById('player');"
            "return [v.textTracks[0].cues[0].line, document.getElementById('cue-style').textContent, v.clientHeight]")
    finally:
        browser.quit()
    assert line == 0  # --position top: the first line from the top
    px = float(size.split("font-size:")[1].rstrip("px}"))
    assert px == pytest.approx(0.10 * height, rel=0.15)  # --font-size 10: 10% of the picture (4:3 in a wider box)


def test_review_page_draws_captions_at_the_top(batch, tmp_path):
    """The cue is drawn in the top of the picture: compare a still frame with and without the track."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser = _chrome()
    try:
        browser.get((batch / "talk.review.html").as_uri())
        _wait_for_video(browser)
        browser.execute_script("const v = document.getElementById('player'); v.pause(); v.currentTime = 2.5;")
        time.sleep(1.0)
        box = browser.find_element(By.ID, "player").rect
        shots = []
        for mode in ("showing", "hidden"):
            browser.execute_script(f"document.getElementById('player').textTracks[0].mode = '{mode}'")
            time.sleep(0.5)
            browser.save_screenshot(str(tmp_path / f"{mode}.png"))
            shots.append(np.asarray(Image.open(tmp_path / f"{mode}.png").convert("RGB")).astype(int))
    finally:
        browser.quit()
    y0, y1, x0, x1 = int(box["y"]), int(box["y"] + box["height"]), int(box["x"]), int(box["x"] + box["width"])
    rows = (np.abs(shots[0] - shots[1])[y0:y1, x0:x1].max(axis=2) > 60).any(axis=1)
    h = len(rows)
    assert rows[: h // 3].sum() >= 10, "no caption in the top third"
    assert not rows[h // 2:].any(), "caption drawn in the bottom half"


def test_rerun_keeps_the_index_of_skipped_clips(batch):
    stamp = (batch / "index.html").stat().st_mtime_ns
    srcs = sorted((batch.parent / "in").iterdir())
    proc = run_cli(*srcs, "--html", "--position", "top", "--font-size", "10", "-o", batch)
    assert proc.returncode == 0 and proc.stderr.count("skipped") >= 3, proc.stderr
    html = (batch / "index.html").read_text(encoding="utf-8")
    assert (batch / "index.html").stat().st_mtime_ns != stamp
    assert all(f'href="{s.stem}.review.html"' in html for s in srcs)
    # Someone else's index.html is not replaced without --overwrite.
    (batch / "index.html").write_text("<p>my own notes</p>")
    proc = run_cli(*srcs, "--html", "--position", "top", "--font-size", "10", "-o", batch)
    assert proc.returncode == 1 and "index.html exists" in proc.stderr
    assert (batch / "index.html").read_text() == "<p>my own notes</p>"
