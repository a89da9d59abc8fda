"""Timed-text backends (SRT, WebVTT, JSON, FunASR) give the same cues; bad input gives clear errors or fixes."""
import json
import sys
import types

import pytest
from curation_cases import SRT_A

from curation.segment import segment
from curation.timed_text import (Cue, TimedText, TimedTextError, clamp_to_duration, load_subtitles,
                                 transcribe_funasr)

VTT_A = """WEBVTT
Kind: captions

NOTE written by hand

a1
00:00.500 --> 00:03.000 line:90%
今天天气很好，我们去公园。

00:03.500 --> 00:04.000
<v Anchor>好的</v>

00:00:04.000 --> 00:00:07.000
明天<c.yellow>下雨</c>吗？

00:08.500 --> 00:11.000
谢谢大家！
"""

SEGMENTS_A = [
    {"text": "今天天气很好，我们去公园。", "start": 0.5, "end": 3.0},
    {"text": "好的", "start": 3.5, "end": 4.0},
    {"text": "明天下雨吗？", "start": 4.0, "end": 7.0},
    {"text": "谢谢大家！", "start": 8.5, "end": 11.0},
]

# The same speech as word timestamps (Whisper-style segments with words): the punctuation arrives with the
# word before it, at that word's end time.
WORDS_A = {"segments": [{"words": [
    {"word": "今天", "start": 0.5, "end": 0.9}, {"word": "天气", "start": 0.9, "end": 1.4},
    {"word": "很好，", "start": 1.4, "end": 1.846}, {"word": "我们", "start": 1.846, "end": 2.3},
    {"word": "去", "start": 2.3, "end": 2.6}, {"word": "公园。", "start": 2.6, "end": 3.0},
]}, {"words": [
    {"word": "好的", "start": 3.5, "end": 4.0}, {"word": "明天", "start": 4.0, "end": 5.0},
    {"word": "下雨", "start": 5.0, "end": 6.0}, {"word": "吗？", "start": 6.0, "end": 7.0},
    {"word": "谢谢", "start": 8.5, "end": 9.5}, {"word": "大家！", "start": 9.5, "end": 11.0},
]}]}


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _times_and_texts(timed):
    return [(cue.start, cue.end, cue.text) for cue in timed.cues]


def _clips(timed):
    return [(round(clip.start, 2), round(clip.end, 2), clip.text) for clip in segment(timed.cues)[0]]


def test_srt_cues(tmp_path):
    timed = load_subtitles(_write(tmp_path / "a.srt", SRT_A))
    assert _times_and_texts(timed) == [(0.5, 3.0, "今天天气很好，我们去公园。"), (3.5, 4.0, "好的"),
                                       (4.0, 7.0, "明天下雨吗？"), (8.5, 11.0, "谢谢大家！")]
    assert timed.cues[2].where == "cue 3 (line 10)"
    assert timed.warnings == []


def test_webvtt_and_json_segments_parse_to_the_srt_cues(tmp_path):
    srt = load_subtitles(_write(tmp_path / "a.srt", SRT_A))
    vtt = load_subtitles(_write(tmp_path / "a.vtt", VTT_A))
    segments = load_subtitles(_write(tmp_path / "a.json", json.dumps(SEGMENTS_A, ensure_ascii=False)))
    assert _times_and_texts(vtt) == _times_and_texts(srt)
    assert _times_and_texts(segments) == _times_and_texts(srt)


def test_json_word_timestamps_give_the_srt_clips(tmp_path):
    srt = load_subtitles(_write(tmp_path / "a.srt", SRT_A))
    words = load_subtitles(_write(tmp_path / "a.json", json.dumps(WORDS_A, ensure_ascii=False)))
    assert _clips(words) == _clips(srt)
    assert [text for _, _, text in _clips(words)] == ["今天天气很好，", "我们去公园。", "好的明天下雨吗？", "谢谢大家！"]


def test_bom_and_crlf_and_markup(tmp_path):
    text = "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<b>Hello</b> &amp;\r\n  world\r\n"
    timed = load_subtitles(_write(tmp_path / "a.srt", text))
    assert _times_and_texts(timed) == [(1.0, 2.5, "Hello & world")]


def test_funasr_backend_reads_sentence_info(tmp_path, monkeypatch):
    calls = {}

    class FakeAutoModel:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def generate(self, **kwargs):
            calls["generate"] = kwargs
            return [{"key": "a", "text": "今天天气很好，我们去公园。",
                     "sentence_info": [{"text": "今天天气很好，", "start": 500, "end": 1846},
                                       {"text": "我们去公园。", "start": 1846, "end": 3000}]}]

    monkeypatch.setitem(sys.modules, "funasr", types.SimpleNamespace(AutoModel=FakeAutoModel))
    model_dir = tmp_path / "paraformer"
    model_dir.mkdir()
    timed = transcribe_funasr(tmp_path / "news.mp4", model_dir)
    assert _times_and_texts(timed) == [(0.5, 1.846, "今天天气很好，"), (1.846, 3.0, "我们去公园。")]
    assert calls["init"]["model"] == str(model_dir) and calls["generate"]["sentence_timestamp"] is True


def test_funasr_missing_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", None)  # makes `import funasr` fail
    with pytest.raises(TimedTextError, match="needs the 'funasr' package"):
        transcribe_funasr(tmp_path / "news.mp4", tmp_path / "model_that_is_not_cached")


# ----------------------------------------------------------------------------- bad input


def test_overlap_is_trimmed_with_a_warning_or_an_error_when_strict(tmp_path):
    path = _write(tmp_path / "a.srt", "1\n00:00:01,000 --> 00:00:03,000\nA,\n\n"
                                      "2\n00:00:02,500 --> 00:00:04,000\nB.\n")
    timed = load_subtitles(path)
    assert _times_and_texts(timed) == [(1.0, 2.5, "A,"), (2.5, 4.0, "B.")]
    assert len(timed.warnings) == 1
    assert "a.srt: cue 1 (line 2)" in timed.warnings[0] and "overlaps cue 2 (line 6)" in timed.warnings[0]
    with pytest.raises(TimedTextError, match=r"a\.srt: cue 1 \(line 2\) .* overlaps cue 2 \(line 6\)"):
        load_subtitles(path, strict=True)


def test_out_of_order_cues_are_an_error_naming_the_cue(tmp_path):
    path = _write(tmp_path / "a.srt", "1\n00:00:05,000 --> 00:00:06,000\nA.\n\n"
                                      "2\n00:00:01,000 --> 00:00:02,000\nB.\n")
    with pytest.raises(TimedTextError, match=r"a\.srt: cue 2 \(line 6\): out of order"):
        load_subtitles(path)


def test_end_before_start_is_an_error(tmp_path):
    path = _write(tmp_path / "a.vtt", "WEBVTT\n\n00:05.000 --> 00:04.000\nA.\n")
    with pytest.raises(TimedTextError, match=r"a\.vtt: cue 1 \(line 3\): end 00:00:04.000 is before start"):
        load_subtitles(path)


def test_times_beyond_the_video_end_are_clamped_or_skipped_with_warnings():
    timed = TimedText("a.srt", [Cue(1.0, 2.0, "A.", "cue 1 (line 2)"), Cue(9.0, 13.5, "B.", "cue 2 (line 6)"),
                                Cue(12.5, 14.0, "C.", "cue 3 (line 10)")])
    fitted = clamp_to_duration(timed, 12.0)
    assert _times_and_texts(fitted) == [(1.0, 2.0, "A."), (9.0, 12.0, "B.")]
    assert "cue 2 (line 6) ends at 00:00:13.500, after the video's end; clamped" in fitted.warnings[0]
    assert "cue 3 (line 10) starts at 00:00:12.500, at or after the video's end" in fitted.warnings[1]


def test_empty_cue_text_is_skipped_with_a_warning(tmp_path):
    path = _write(tmp_path / "a.srt", "1\n00:00:01,000 --> 00:00:02,000\n<i> </i>\n\n"
                                      "2\n00:00:03,000 --> 00:00:04,000\nB.\n")
    timed = load_subtitles(path)
    assert _times_and_texts(timed) == [(3.0, 4.0, "B.")]
    assert timed.warnings == [f"{path}: cue 1 (line 2) has no text; skipped"]


def test_a_file_without_any_text_is_an_error(tmp_path):
    with pytest.raises(TimedTextError, match="no cue with text"):
        load_subtitles(_write(tmp_path / "a.srt", "1\n00:00:01,000 --> 00:00:02,000\n\n"))
    with pytest.raises(TimedTextError, match="no cue with text"):
        load_subtitles(_write(tmp_path / "b.srt", ""))


def test_non_utf8_text_names_the_line_and_the_fix(tmp_path):
    path = _write(tmp_path / "a.srt", SRT_A, encoding="gb18030")
    with pytest.raises(TimedTextError, match=r"a\.srt:3: not valid utf-8-sig text .* --subtitle-encoding"):
        load_subtitles(path)
    assert load_subtitles(path, encoding="gb18030").cues[0].text == "今天天气很好，我们去公园。"


def test_malformed_time_line_and_json_errors_name_the_place(tmp_path):
    with pytest.raises(TimedTextError, match=r"a\.srt:6: expected a time line"):
        load_subtitles(_write(tmp_path / "a.srt", "1\n00:00:01,000 --> 00:00:02,000\nA.\n\n2\n00:00:03 -> 4\nB.\n"))
    with pytest.raises(TimedTextError, match=r"b\.vtt:1: a WebVTT file must start with 'WEBVTT'"):
        load_subtitles(_write(tmp_path / "b.vtt", "00:01.000 --> 00:02.000\nA.\n"))
    with pytest.raises(TimedTextError, match=r"c\.json: words\[1\] field 'end' is None"):
        load_subtitles(_write(tmp_path / "c.json", json.dumps({"words": [
            {"word": "a", "start": 0, "end": 1}, {"word": "b", "start": 1}]})))
    with pytest.raises(TimedTextError, match=r"d\.json:2: invalid JSON"):
        load_subtitles(_write(tmp_path / "d.json", "[\n{oops}\n]"))
    with pytest.raises(TimedTextError, match="unknown subtitle format"):
        load_subtitles(_write(tmp_path / "e.txt", "hello"))
