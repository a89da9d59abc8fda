"""Timed text: what was said when, from subtitle files or an ASR backend, behind one interface.

Every source becomes a `TimedText`: a list of `Cue(start, end, text, where)` in seconds plus the warnings
raised while reading it. Sources:
  * SRT (`.srt`) and WebVTT (`.vtt`) subtitle files: one cue per subtitle block;
  * JSON (`.json`): word or segment timestamps in seconds, as a list of {text|word, start, end}, or
    {"words": [...]}, or Whisper-style {"segments": [{"words": [...]} | {text, start, end}]}, or a saved
    FunASR result (a list of {"sentence_info": [{text, start, end}]} with times in milliseconds);
  * FunASR run on the media file itself (`transcribe_funasr`), when `funasr` is installed with a local model.

Checks (`check_cues`), each naming the file and the cue (number and line):
  * end before start, or a cue starting before the previous one (out of order): error;
  * a cue overlapping the previous one: the previous cue's end is trimmed to this start, with a warning
    (or an error with strict=True);
  * a cue without text: skipped with a warning; a source with no text at all: error;
  * undecodable bytes: error naming the line (pass `encoding`, e.g. gb18030, for non-UTF-8 files).
`clamp_to_duration` fits the cues into a video: cues starting at or after its end are dropped and ends
beyond it are clamped, each with a warning.
"""
import html
import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from curation import CurationError

SUBTITLE_SUFFIXES = (".srt", ".vtt", ".json")
_SRT_TIME = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}")
_VTT_TIME = r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TIME}\s*-->\s*{_VTT_TIME}(?:\s|$)")
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-like tags, WebVTT voice/class/timestamp tags, SSA overrides


class TimedTextError(CurationError):
    """A timed-text source is unreadable or inconsistent; the message names the file and cue/line."""


@dataclass(frozen=True)
class Cue:
    """One timed piece of text: a subtitle cue, a word, or an ASR sentence. Times in seconds."""

    start: float
    end: float
    text: str
    where: str  # position in the source for messages, e.g. "cue 3 (line 9)" or "item 4"


@dataclass
class TimedText:
    """The cues of one source, in time order, and the warnings raised while reading and fixing them."""

    source: str
    cues: list[Cue]
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading files


def read_text_file(path, encoding=None) -> str:
    """Decode a text file (UTF-8, BOM allowed, unless `encoding` is given); errors name the line."""
    path = Path(path)
    encoding = encoding or "utf-8-sig"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TimedTextError(f"{path}: cannot read the file ({error.strerror})") from error
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TimedTextError(
            f"{path}:{line}: not valid {encoding} text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "pass the file's encoding with --subtitle-encoding (e.g. gb18030)"
        ) from error
    except LookupError as error:
        raise TimedTextError(f"{path}: unknown text encoding '{encoding}'") from error


def clean_cue_text(text) -> str:
    """Subtitle markup removed (tags, entities), line breaks and runs of spaces turned into one space."""
    return " ".join(html.unescape(_MARKUP.sub("", text)).split())


def _seconds(hours, minutes, seconds, fraction) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def _blocks(text):
    """Blank-line separated blocks as lists of (line number, line)."""
    block = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            block.append((number, line.rstrip()))
        elif block:
            yield block
            block = []
    if block:
        yield block


def parse_srt(text, source) -> list[Cue]:
    """Cues of an SRT file: blocks of [number], 'HH:MM:SS,mmm --> HH:MM:SS,mmm', text lines."""
    cues = []
    for block in _blocks(text):
        if _SRT_TIMING.match(block[0][1]) is None and len(block) > 1 and block[0][1].strip().isdigit():
            block = block[1:]  # the optional cue number
        number, timing = block[0]
        match = _SRT_TIMING.match(timing)
        if match is None:
            raise TimedTextError(
                f"{source}:{number}: expected a time line 'HH:MM:SS,mmm --> HH:MM:SS,mmm', got {timing.strip()!r}"
            )
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        body = clean_cue_text("\n".join(line for _, line in block[1:]))
        cues.append(Cue(start, end, body, f"cue {len(cues) + 1} (line {number})"))
    return cues


def parse_webvtt(text, source) -> list[Cue]:
    """Cues of a WebVTT file; the header, NOTE, STYLE and REGION blocks are skipped."""
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise TimedTextError(f"{source}:1: a WebVTT file must start with 'WEBVTT'")
    cues = []
    for index, block in enumerate(_blocks(text)):
        if index == 0 or block[0][1].split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        if "-->" not in block[0][1] and len(block) > 1:
            block = block[1:]  # the optional cue identifier
        number, timing = block[0]
        match = _VTT_TIMING.match(timing)
        if match is None:
            raise TimedTextError(
                f"{source}:{number}: expected a time line '[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm', got {timing.strip()!r}"
            )
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        body = clean_cue_text("\n".join(line for _, line in block[1:]))
        cues.append(Cue(start, end, body, f"cue {len(cues) + 1} (line {number})"))
    return cues


def _json_items(data, source):
    """(items, list name, seconds per unit) of any supported JSON timestamp layout."""
    if isinstance(data, list) and data and isinstance(data[0], dict) and "sentence_info" in data[0]:
        return [item for result in data for item in result["sentence_info"]], "sentence_info", 0.001
    if isinstance(data, dict) and "sentence_info" in data:
        return data["sentence_info"], "sentence_info", 0.001
    if isinstance(data, list):
        return data, "items", 1.0
    if isinstance(data, dict) and isinstance(data.get("words"), list):
        return data["words"], "words", 1.0
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        items = []
        for segment in data["segments"]:
            words = segment.get("words") if isinstance(segment, dict) else None
            items.extend(words if words else [segment])
        return items, "segments", 1.0
    raise TimedTextError(
        f"{source}: expected a JSON list of {{text, start, end}}, or an object with 'words', 'segments' "
        "or 'sentence_info'"
    )


def _json_cue(item, index, name, unit, source) -> Cue:
    where = f"{name}[{index}]"
    if not isinstance(item, dict):
        raise TimedTextError(f"{source}: {where} is a {type(item).__name__}, expected an object")
    text = item.get("text", item.get("word"))
    if not isinstance(text, str):
        raise TimedTextError(f"{source}: {where} has no string field 'text' or 'word'")
    times = []
    for key in ("start", "end"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise TimedTextError(f"{source}: {where} field '{key}' is {value!r}, expected a number >= 0")
        times.append(value * unit)
    return Cue(times[0], times[1], clean_cue_text(text), where)


def parse_json_timestamps(text, source) -> list[Cue]:
    """Cues of a JSON word/segment timestamp file (layouts in the module docstring)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TimedTextError(f"{source}:{error.lineno}: invalid JSON ({error.msg})") from error
    items, name, unit = _json_items(data, source)
    return [_json_cue(item, index, name, unit, source) for index, item in enumerate(items)]


PARSERS = {".srt": parse_srt, ".vtt": parse_webvtt, ".json": parse_json_timestamps}


def load_subtitles(path, encoding=None, strict=False) -> TimedText:
    """Read and check a subtitle/timestamp file, chosen by its suffix (.srt, .vtt, .json)."""
    path = Path(path)
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise TimedTextError(f"{path}: unknown subtitle format; expected one of {', '.join(SUBTITLE_SUFFIXES)}")
    return check_cues(parser(read_text_file(path, encoding), path), path, strict)


# ----------------------------------------------------------------------------- FunASR


@lru_cache(maxsize=2)
def _funasr_model(model_dir, vad_model, punc_model, device):
    """A FunASR AutoModel built from local directories (cached per process)."""
    try:
        from funasr import AutoModel
    except ImportError as error:
        raise TimedTextError(
            "the FunASR backend needs the 'funasr' package and a local model directory (--asr-model); "
            "install funasr or give subtitle files with --subtitles"
        ) from error
    for label, path in (("--asr-model", model_dir), ("--asr-vad-model", vad_model), ("--asr-punc-model", punc_model)):
        if path is not None and not Path(path).is_dir():
            raise TimedTextError(f"{label} {path}: not a local model directory")
    return AutoModel(model=model_dir, vad_model=vad_model, punc_model=punc_model, device=device,
                     disable_update=True)


def transcribe_funasr(media_path, model_dir, vad_model=None, punc_model=None, device="cpu", strict=False) -> TimedText:
    """Run FunASR on a media file; its sentence timestamps (split at punctuation) become the cues.

    The model needs punctuation (a punc model, or one with punctuation built in) so that FunASR returns
    `sentence_info`.
    """
    if model_dir is None:
        raise TimedTextError("the FunASR backend needs --asr-model DIR (a local FunASR model directory)")
    model = _funasr_model(str(model_dir), vad_model and str(vad_model), punc_model and str(punc_model), device)
    result = model.generate(input=str(media_path), sentence_timestamp=True)
    source = f"{media_path} (FunASR)"
    if not result or not all(isinstance(item, dict) and "sentence_info" in item for item in result):
        raise TimedTextError(
            f"{source}: FunASR returned no 'sentence_info'; use a model with punctuation (--asr-punc-model)"
        )
    items, name, unit = _json_items(result, source)
    cues = [_json_cue(item, index, name, unit, source) for index, item in enumerate(items)]
    return check_cues(cues, source, strict)


# ----------------------------------------------------------------------------- checks and fixes


def _stamp(seconds) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes // 60):02d}:{int(minutes % 60):02d}:{rest:06.3f}"


def _drop_empty(cues, source, warnings):
    kept = []
    for cue in cues:
        if cue.text:
            kept.append(cue)
        else:
            warnings.append(f"{source}: {cue.where} has no text; skipped")
    if not kept:
        raise TimedTextError(f"{source}: no cue with text")
    return kept


def check_cues(cues, source, strict=False) -> TimedText:
    """Validate time order; trim overlaps (or raise when strict); skip empty cues. See the module docstring."""
    warnings = []
    cues = _drop_empty(cues, source, warnings)
    checked = []
    for cue in cues:
        if cue.end < cue.start:
            raise TimedTextError(f"{source}: {cue.where}: end {_stamp(cue.end)} is before start {_stamp(cue.start)}")
        if checked and cue.start < checked[-1].start:
            raise TimedTextError(
                f"{source}: {cue.where}: out of order, starts at {_stamp(cue.start)}, before the previous "
                f"{checked[-1].where} ({_stamp(checked[-1].start)}); sort the cues by start time"
            )
        if checked and cue.start < checked[-1].end:
            previous = checked[-1]
            message = (f"{source}: {previous.where} (ends {_stamp(previous.end)}) overlaps {cue.where} "
                       f"(starts {_stamp(cue.start)})")
            if strict:
                raise TimedTextError(message)
            warnings.append(f"{message}; trimmed the end of {previous.where} to {_stamp(cue.start)}")
            checked[-1] = replace(previous, end=cue.start)
        checked.append(cue)
    return TimedText(str(source), checked, warnings)


def clamp_to_duration(timed: TimedText, duration) -> TimedText:
    """Fit cues into a video of `duration` seconds: drop cues starting at/after the end, clamp later ends."""
    cues, warnings = [], list(timed.warnings)
    for cue in timed.cues:
        if cue.start >= duration:
            warnings.append(f"{timed.source}: {cue.where} starts at {_stamp(cue.start)}, at or after the video's "
                            f"end ({_stamp(duration)}); skipped")
        elif cue.end > duration:
            warnings.append(f"{timed.source}: {cue.where} ends at {_stamp(cue.end)}, after the video's end; "
                            f"clamped to {_stamp(duration)}")
            cues.append(replace(cue, end=duration))
        else:
            cues.append(cue)
    return TimedText(timed.source, cues, warnings)
