"""The hand-made test broadcast: two 12 s videos at 10 fps with a signer inset, their SRT subtitles, and the
clips they must give.

The inset (relative box CROP = 0.5,0.5,1,1 -> pixels 80..160 x 60..120) shows its frame number as a code
(`curation.demo.frame_index` reads it back), so a test can tell exactly which source frames a clip holds.
EXPECTED_CLIPS was worked out by hand from the rules in curation/segment.py (defaults: min 1 s, max 20 s,
pause 1 s).

The fixtures `broadcast_dir` (session-scoped) and `broadcast` (a private copy) put the two videos
and their subtitles on disk; test modules import them from here. (No conftest.py in this folder: a second
module named `conftest` would shadow tests/conftest.py for the tests that import from it.)
"""
import shutil

import cv2

import pytest

from curation.demo import write_broadcast

SECONDS, FPS = 12.0, 10
CROP = "0.5,0.5,1,1"

SRT_A = """1
00:00:00,500 --> 00:00:03,000
今天天气很好，我们去公园。

2
00:00:03,500 --> 00:00:04,000
好的

3
00:00:04,000 --> 00:00:07,000
明天<i>下雨</i>吗？

4
00:00:08,500 --> 00:00:11,000
谢谢大家！
"""

SRT_B = """1
00:00:01,000 --> 00:00:05,000
Tomorrow we go to school. Does it rain?

2
00:00:05,500 --> 00:00:06,000
Yes.

3
00:00:09,000 --> 00:00:13,500
新闻联播到此结束。

4
00:00:13,600 --> 00:00:14,500
再见。
"""

# name -> (text, start_frame, end_frame). news_a: the comma inside cue 1 sits at character 7 of 13, so at
# 0.5 + 2.5 * 7 / 13 = 1.846 s (frame 18); "好的" has no mark and runs on into cue 3. news_b: the '.' ends
# character 25 of 39 (1 + 4 * 25 / 39 = 3.564 s, frame 36); "Yes." (0.5 s) is merged into the clip before
# it; cue 3 is clamped to the 12 s video end and cue 4, starting after it, is skipped.
EXPECTED_CLIPS = {
    "news_a_0000": ("今天天气很好，", 5, 18),
    "news_a_0001": ("我们去公园。", 18, 30),
    "news_a_0002": ("好的明天下雨吗？", 35, 70),
    "news_a_0003": ("谢谢大家！", 85, 110),
    "news_b_0000": ("Tomorrow we go to school.", 10, 36),
    "news_b_0001": ("Does it rain? Yes.", 36, 60),
    "news_b_0002": ("新闻联播到此结束。", 90, 120),
}


@pytest.fixture(scope="session")
def broadcast_dir(tmp_path_factory):
    """A folder with videos/news_a.mp4, videos/news_b.mp4 and subtitles/news_a.srt, subtitles/news_b.srt."""
    root = tmp_path_factory.mktemp("broadcast")
    for name, srt in (("news_a", SRT_A), ("news_b", SRT_B)):
        write_broadcast(root / "videos" / f"{name}.mp4", SECONDS, FPS)
        (root / "subtitles").mkdir(exist_ok=True)
        (root / "subtitles" / f"{name}.srt").write_text(srt, encoding="utf-8")
    return root


@pytest.fixture
def broadcast(broadcast_dir, tmp_path):
    """A private copy of the broadcast folder (tests may edit its subtitles)."""
    copy = tmp_path / "broadcast"
    shutil.copytree(broadcast_dir, copy)
    return copy


def read_frames(path):
    """Every decoded BGR frame of a video file, in order."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames

