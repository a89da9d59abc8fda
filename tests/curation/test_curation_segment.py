"""Segmentation at punctuation timestamps, duration rules, text normalisation."""
import pytest

from curation.segment import SegmentRules, join_text, normalize_text, segment, text_tokens
from curation.timed_text import Cue


def cue(start, end, text):
    return Cue(start, end, text, f"cue at {start}")


def clips_of(cues, **rules):
    clips, dropped = segment(cues, SegmentRules(**rules))
    return [(round(clip.start, 3), round(clip.end, 3), clip.text) for clip in clips], dropped


def test_split_at_every_mark_with_interpolated_times():
    clips, dropped = clips_of([cue(1.0, 8.0, "你好，世界。今天好吗？是的！")], min_duration=0.5)
    # 14 characters over 7 s: the marks end characters 3, 6, 11 and 14 -> 2.5 s, 4.0 s, 6.5 s, 8.0 s.
    assert clips == [(1.0, 2.5, "你好，"), (2.5, 4.0, "世界。"), (4.0, 6.5, "今天好吗？"), (6.5, 8.0, "是的！")]
    assert dropped == []


def test_latin_marks_and_decimal_numbers():
    clips, _ = clips_of([cue(0.0, 10.0, "Growth was 3.5 percent, up from 1,000. Good!")], min_duration=0.1)
    assert [text for _, _, text in clips] == ["Growth was 3.5 percent,", "up from 1,000.", "Good!"]


def test_text_runs_across_cues_until_a_mark_and_a_pause_ends_a_clip():
    cues = [cue(0.0, 1.0, "我们"), cue(1.0, 2.0, "去公园"), cue(2.2, 3.0, "散步。"),
            cue(5.0, 6.5, "then we go"), cue(8.0, 9.5, "home")]
    clips, _ = clips_of(cues)
    assert clips == [(0.0, 3.0, "我们去公园散步。"), (5.0, 6.5, "then we go"), (8.0, 9.5, "home")]


def test_short_pieces_merge_with_a_close_neighbour_and_distant_ones_are_dropped():
    cues = [cue(0.0, 3.0, "第一句话。"), cue(3.2, 3.6, "对。"), cue(3.6, 4.0, "嗯，"), cue(4.2, 7.0, "第二句话。"),
            cue(10.0, 10.5, "好。")]
    clips, dropped = clips_of(cues, min_duration=1.0, pause=1.0)
    assert clips == [(0.0, 4.0, "第一句话。对。嗯，"), (4.2, 7.0, "第二句话。")]
    assert [(item.text, item.reason) for item in dropped] == [("好。", "shorter than min_duration (0.50 s < 1.0 s)")]


def test_merging_never_exceeds_max_duration():
    cues = [cue(0.0, 9.8, "长句子。"), cue(9.8, 10.3, "短。"), cue(10.3, 14.0, "下一句。")]
    clips, dropped = clips_of(cues, min_duration=1.0, max_duration=10.0)
    assert clips == [(0.0, 9.8, "长句子。"), (9.8, 14.0, "短。下一句。")]
    assert dropped == []


def test_long_clips_split_at_the_cue_boundary_nearest_the_middle_or_are_dropped():
    cues = [cue(0.0, 4.0, "one"), cue(4.0, 8.0, "two"), cue(8.0, 12.0, "three"), cue(12.0, 16.0, "four.")]
    clips, dropped = clips_of(cues, max_duration=10.0)
    assert clips == [(0.0, 8.0, "one two"), (8.0, 16.0, "three four.")]
    clips, dropped = clips_of([cue(0.0, 30.0, "a very long cue without any mark")], max_duration=10.0)
    assert clips == []
    assert "longer than max_duration (30.00 s > 10.0 s)" in dropped[0].reason


def test_custom_marks_keep_commas_inside_clips():
    clips, _ = clips_of([cue(0.0, 6.0, "你好，世界。今天好吗？")], marks="。？！.?!")
    assert [text for _, _, text in clips] == ["你好，世界。", "今天好吗？"]


def test_clip_without_words_is_dropped():
    clips, dropped = clips_of([cue(0.0, 2.0, "[音乐]"), cue(3.0, 5.0, "新闻。")])
    assert [text for _, _, text in clips] == ["新闻。"]
    assert dropped[0].reason == "no words in the text"


def test_normalize_text():
    assert normalize_text("，  我 们  去 公园 。") == "我们去公园。"
    assert normalize_text("ＣＣＴＶ１３ 新闻【音乐】") == "CCTV13 新闻"
    assert normalize_text("[Music]  hello   world ") == "hello world"
    assert join_text(["今天", "we go", "home.", "好"]) == "今天we go home.好"


def test_text_tokens_count_cjk_characters_and_words():
    assert text_tokens("我们去 School's gate, 3.5 km！") == ["我", "们", "去", "school's", "gate", "3", "5", "km"]


def test_rules_are_validated():
    with pytest.raises(ValueError, match="min_duration < max_duration"):
        SegmentRules(min_duration=5, max_duration=2)
