"""A curation run's output layout and its manifest: OUT/manifest.jsonl holds one JSON record per processed
video (appended; a later record of the same video replaces the earlier one), OUT/rgb_format/ the clips,
OUT/pose_format/ their poses."""
import json
from pathlib import Path

from curation import CurationError

MANIFEST_NAME = "manifest.jsonl"
RGB_DIR, POSE_DIR = "rgb_format", "pose_format"


def read_manifest(path) -> dict:
    """Video name -> its latest manifest record (later lines win)."""
    records = {}
    path = Path(path)
    if not path.is_file():
        return records
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CurationError(f"{path}:{number}: not a JSON line ({error.msg}); fix or remove the line") from error
        records[record["video"]] = record
    return records
