"""Split timed text into clips at punctuation timestamps (paper section 3.1), with duration rules.

1. Each cue is cut after every split mark (default ，。？！ and , . ? !; a '.' between digits is not a mark).
   A mark inside a cue gets its time by linear interpolation over the cue's characters.
2. Pieces are joined into clips up to the next split mark; a pause of at least `pause` seconds between
   cues also ends a clip (captions often carry no punctuation).
3. Clips longer than `max_duration` are split at the cue boundary nearest their middle; one that has no
   boundary left is dropped.
4. Clips shorter than `min_duration` are merged with the previous clip (or absorb the next one) when the
   gap between them is under `pause` and the result is not longer than `max_duration`; otherwise dropped.
5. The clip text is normalised (`normalize_text`); clips with no words are dropped.
Every dropped clip is returned with its reason.
"""
import re
from dataclasses import dataclass

DEFAULT_MARKS = "，。？！,.?!"
# Wide characters: CJK punctuation, kana, CJK ideographs, Hangul, full-width forms. No space goes next to them.
_WIDE = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_WIDE_CHAR = re.compile(f"[{_WIDE}]")
_SPACE_BETWEEN_WIDE = re.compile(f"(?<=[{_WIDE}]) +(?=[{_WIDE}])")
_SOUND_NOTE = re.compile(r"\[[^\]]*\]|【[^】]*】")  # caption notes such as [music], 【音乐】
_LEADING_JUNK = re.compile(r"^[\s，。？！、；：,.?!;:]+")
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|[^\W_]+(?:'[^\W_]+)*")


@dataclass(frozen=True)
class SegmentRules:
    """Clip duration rules, in seconds, and the split marks."""

    min_duration: float = 1.0
    max_duration: float = 20.0
    pause: float = 1.0
    marks: str = DEFAULT_MARKS

    def __post_init__(self):
        if not 0 <= self.min_duration < self.max_duration:
            raise ValueError(f"need 0 <= min_duration < max_duration, got {self.min_duration} and {self.max_duration}")
        if self.pause <= 0 or not self.marks:
            raise ValueError("pause must be > 0 and marks must not be empty")


@dataclass(frozen=True)
class Piece:
    """Part of one cue, ending at a split mark (`closes`) or at the cue's end."""

    text: str
    start: float
    end: float
    cue: int  # index of the cue in the timed text
    closes: bool


@dataclass(frozen=True)
class Clip:
    """A video-text pair to cut: consecutive pieces."""

    pieces: tuple

    @property
    def start(self) -> float:
        return self.pieces[0].start

    @property
    def end(self) -> float:
        return self.pieces[-1].end

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def text(self) -> str:
        return normalize_text(join_text(piece.text for piece in self.pieces))

    @property
    def cues(self) -> list:
        """Indices of the cues the clip was made from."""
        return sorted({piece.cue for piece in self.pieces})


@dataclass(frozen=True)
class Dropped:
    """A stretch of timed text that became no clip, and why."""

    start: float
    end: float
    text: str
    reason: str


# ----------------------------------------------------------------------------- text


def join_text(parts) -> str:
    """Concatenate text parts, with a space between two parts only when neither side is a wide character."""
    text = ""
    for part in parts:
        part = part.strip()
        if text and part and not (_WIDE_CHAR.match(text[-1]) or _WIDE_CHAR.match(part[0])):
            text += " "
        text += part
    return text


def _halfwidth_alphanumerics(text) -> str:
    """Full-width letters and digits (Ａ１) to ASCII; full-width punctuation stays."""
    return "".join(chr(ord(ch) - 0xFEE0) if ("０" <= ch <= "９" or "Ａ" <= ch <= "Ｚ" or "ａ" <= ch <= "ｚ") else ch
                   for ch in text)


def normalize_text(text) -> str:
    """Clip text as written to the labels.

    Removes caption notes ([music], 【音乐】), full-width letters/digits become ASCII, whitespace runs become
    one space, spaces between wide (CJK) characters and leading punctuation are removed.
    """
    text = _halfwidth_alphanumerics(_SOUND_NOTE.sub(" ", text))
    text = _SPACE_BETWEEN_WIDE.sub("", " ".join(text.split()))
    return _LEADING_JUNK.sub("", text).strip()


def text_tokens(text) -> list:
    """Units counted as text length and vocabulary: CJK characters and (lower-cased) words of other scripts."""
    return [token.lower() for token in _TOKEN.findall(text)]


# ----------------------------------------------------------------------------- segmentation


def _mark_pattern(marks):
    """Runs of split marks, except a '.' or ',' between digits (3.5, 1,000)."""
    return re.compile(f"(?:(?<!\\d)[{re.escape(marks)}]|[{re.escape(marks)}](?!\\d))+")


def split_cue(cue, index, pattern) -> list:
    """Cut one cue after every run of split marks; times interpolated over its characters."""
    text, length = cue.text, len(cue.text)

    def time_at(position):
        return cue.start + (cue.end - cue.start) * position / length

    pieces, begin = [], 0
    for match in pattern.finditer(text):
        pieces.append(Piece(text[begin:match.end()], time_at(begin), time_at(match.end()), index, True))
        begin = match.end()
    if text[begin:].strip():
        pieces.append(Piece(text[begin:], time_at(begin), cue.end, index, False))
    return pieces


def group_pieces(pieces, pause) -> list:
    """Clips ending at a split mark or before a pause of at least `pause` seconds."""
    clips, current = [], []
    for piece in pieces:
        if current and piece.start - current[-1].end >= pause:
            clips.append(Clip(tuple(current)))
            current = []
        current.append(piece)
        if piece.closes:
            clips.append(Clip(tuple(current)))
            current = []
    if current:
        clips.append(Clip(tuple(current)))
    return clips


def split_long(clip, rules, dropped) -> list:
    """Split a clip above max_duration at the piece boundary nearest its middle (recursively)."""
    if clip.duration <= rules.max_duration:
        return [clip]
    if len(clip.pieces) == 1:
        dropped.append(Dropped(clip.start, clip.end, clip.text,
                               f"longer than max_duration ({clip.duration:.2f} s > {rules.max_duration} s) "
                               "with no punctuation or cue boundary to split at"))
        return []
    middle = (clip.start + clip.end) / 2
    cut = min(range(1, len(clip.pieces)), key=lambda index: abs(clip.pieces[index - 1].end - middle))
    return (split_long(Clip(clip.pieces[:cut]), rules, dropped)
            + split_long(Clip(clip.pieces[cut:]), rules, dropped))


def merge_short(clips, rules, dropped) -> list:
    """Merge clips under min_duration with a neighbour (see the module docstring); drop the rest."""
    merged = []
    for clip in clips:
        if merged:
            previous = merged[-1]
            short = min(previous.duration, clip.duration) < rules.min_duration
            close = clip.start - previous.end < rules.pause
            if short and close and clip.end - previous.start <= rules.max_duration:
                merged[-1] = Clip(previous.pieces + clip.pieces)
                continue
        merged.append(clip)
    kept = []
    for clip in merged:
        if clip.duration < rules.min_duration:
            dropped.append(Dropped(clip.start, clip.end, clip.text,
                                   f"shorter than min_duration ({clip.duration:.2f} s < {rules.min_duration} s)"))
        else:
            kept.append(clip)
    return kept


def segment(cues, rules=SegmentRules()) -> tuple:
    """Timed-text cues -> (clips, dropped), both in time order."""
    pattern = _mark_pattern(rules.marks)
    pieces = [piece for index, cue in enumerate(cues) for piece in split_cue(cue, index, pattern)]
    dropped = []
    clips = [part for clip in group_pieces(pieces, rules.pause) for part in split_long(clip, rules, dropped)]
    clips = merge_short(clips, rules, dropped)
    kept = []
    for clip in clips:
        if text_tokens(clip.text):
            kept.append(clip)
        else:
            dropped.append(Dropped(clip.start, clip.end, clip.text, "no words in the text"))
    return kept, sorted(dropped, key=lambda item: item.start)
