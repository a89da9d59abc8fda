"""The signer region: crop boxes in relative coordinates, per-programme presets, and cutting clips to files.

A crop box is (x0, y0, x1, y1) as fractions of the frame width and height, 0 <= x0 < x1 <= 1 and
0 <= y0 < y1 <= 1 (paper: "predefined relative coordinates"). Presets live in config/curation_presets.json.
A box outside the frame is an error, never silently clipped. In pixels the box is rounded to the nearest
pixel and its width and height made even (H.264 needs even sizes).

Clips are cut with OpenCV (default: one sequential decoding pass per video, mp4v output) or with ffmpeg
(`cutter="ffmpeg"`, H.264 output, needs `ffmpeg` on PATH).

Check a preset on your programme before a large run:
    python -m curation.crop --video NEWS.mp4 --preset bottom_right_inset --time 60 --out preview.png
"""
import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from curation import CurationError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PRESETS = REPO_ROOT / "config" / "curation_presets.json"
CUTTERS = ("opencv", "ffmpeg")


class CropError(CurationError):
    """A crop box or preset is invalid, or a clip could not be cut."""


@dataclass(frozen=True)
class CropBox:
    """Signer region as fractions of the frame: (x0, y0) top-left, (x1, y1) bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float
    source: str = "--crop"  # where the box came from, for messages and the manifest

    def __post_init__(self):
        values = (self.x0, self.y0, self.x1, self.y1)
        outside = [f"{name}={value}" for name, value in zip(("x0", "y0", "x1", "y1"), values) if not 0 <= value <= 1]
        if outside:
            raise CropError(f"crop box {values} ({self.source}) lies outside the frame: {', '.join(outside)} "
                            "not in [0, 1]")
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise CropError(f"crop box {values} ({self.source}) is empty: need x0 < x1 and y0 < y1")

    def relative(self) -> list:
        return [self.x0, self.y0, self.x1, self.y1]

    def pixels(self, width, height, video="video") -> tuple:
        """(x0, y0, x1, y1) in pixels of a width x height frame, with even width and height."""
        x0, x1 = round(self.x0 * width), round(self.x1 * width)
        y0, y1 = round(self.y0 * height), round(self.y1 * height)
        x1, y1 = x0 + (x1 - x0) // 2 * 2, y0 + (y1 - y0) // 2 * 2
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise CropError(f"{video}: crop box {self.relative()} ({self.source}) is only {x1 - x0}x{y1 - y0} "
                            f"pixels on a {width}x{height} frame")
        return x0, y0, x1, y1


def parse_crop(text) -> CropBox:
    """'x0,y0,x1,y1' (fractions) -> CropBox."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError as error:
        raise CropError(f"--crop {text!r}: expected four numbers x0,y0,x1,y1") from error
    if len(values) != 4:
        raise CropError(f"--crop {text!r}: expected four numbers x0,y0,x1,y1, got {len(values)}")
    return CropBox(*values, source="--crop")


def load_presets(path=None) -> dict:
    """Preset name -> raw entry ({crop, description}) from the presets file (keys starting with '_' skipped)."""
    path = Path(path or DEFAULT_PRESETS)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CropError(f"{path}: not a readable presets file ({error})") from error
    return {name: entry for name, entry in data.items() if not name.startswith("_")}


def preset_box(name, path=None) -> CropBox:
    """The crop box of a named preset."""
    presets = load_presets(path)
    if name not in presets:
        raise CropError(f"unknown crop preset '{name}'; known presets: {', '.join(sorted(presets))}")
    crop = presets[name].get("crop")
    if not (isinstance(crop, list) and len(crop) == 4):
        raise CropError(f"preset '{name}' in {path or DEFAULT_PRESETS}: 'crop' must be [x0, y0, x1, y1]")
    return CropBox(*crop, source=f"preset {name}")


# ----------------------------------------------------------------------------- cutting


def _open_writer(path, fps, size):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise CropError(f"{path}: OpenCV cannot open an mp4v video writer")
    return writer


def partial_path(path) -> Path:
    """Where a clip is written before it is renamed into place (an interrupted run leaves no half clip)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def cut_clips_opencv(video, ranges, box, out_paths, fps) -> list:
    """Cut frame ranges [start, end) (sorted, non-overlapping) cropped to the pixel box, in one decoding pass.

    Returns the end frame actually written per clip: a video that ends before its reported frame count
    truncates its last clips (the caller records this).
    """
    import cv2

    x0, y0, x1, y1 = box
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise CropError(f"{video}: OpenCV cannot open the video")
    position, ends = 0, []
    try:
        for (start, end), out_path in zip(ranges, out_paths):
            if start < position:
                raise CropError(f"{video}: clip frame ranges overlap or are unsorted at frame {start}")
            while position < start and capture.grab():
                position += 1
            temporary = partial_path(out_path)
            writer = _open_writer(temporary, fps, (x1 - x0, y1 - y0))
            while position < end:
                ok, frame = capture.read()
                if not ok:
                    break
                writer.write(frame[y0:y1, x0:x1])
                position += 1
            writer.release()
            os.replace(temporary, out_path)
            ends.append(position)
    finally:
        capture.release()
    return ends


def ffmpeg_command(video, start, end, fps, box, out_path) -> list:
    """The ffmpeg call that writes frames [start, end) of `video`, cropped to the pixel box, as H.264."""
    x0, y0, x1, y1 = box
    return ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start / fps:.6f}", "-i", str(video),
            "-frames:v", str(end - start), "-vf", f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0}", "-an",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out_path)]


def cut_clips_ffmpeg(video, ranges, box, out_paths, fps) -> list:
    """Cut clips with one ffmpeg call each (same contract as `cut_clips_opencv`)."""
    if shutil.which("ffmpeg") is None:
        raise CropError("--cutter ffmpeg: no 'ffmpeg' on PATH (install it, or use the default --cutter opencv)")
    for (start, end), out_path in zip(ranges, out_paths):
        temporary = partial_path(out_path)
        result = subprocess.run(ffmpeg_command(video, start, end, fps, box, temporary), capture_output=True, text=True)
        if result.returncode != 0:
            raise CropError(f"{video}: ffmpeg failed on frames {start}-{end}: {result.stderr.strip()[-500:]}")
        os.replace(temporary, out_path)
    return [end for _, end in ranges]


def cut_clips(cutter, video, ranges, box, out_paths, fps) -> list:
    """Dispatch to the chosen cutter ('opencv' or 'ffmpeg')."""
    if cutter not in CUTTERS:
        raise CropError(f"unknown cutter '{cutter}'; expected one of {', '.join(CUTTERS)}")
    cut = cut_clips_opencv if cutter == "opencv" else cut_clips_ffmpeg
    return cut(video, ranges, box, [Path(path) for path in out_paths], fps)


# ----------------------------------------------------------------------------- preview


def write_preview(video, box, out_path, seconds=0.0):
    """Save the frame at `seconds` with the crop box drawn on it (to check a preset)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise CropError(f"{video}: cannot read a frame at {seconds} s")
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box.pixels(width, height, video)
    cv2.rectangle(frame, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 255), max(1, width // 320))
    if not cv2.imwrite(str(out_path), frame):
        raise CropError(f"{out_path}: cannot write the preview image")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a crop box on a video frame to check a preset.")
    parser.add_argument("--video", required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--preset", help="preset name in --presets")
    group.add_argument("--crop", help="x0,y0,x1,y1 as fractions of the frame")
    parser.add_argument("--presets", default=None, help=f"presets file (default {DEFAULT_PRESETS})")
    parser.add_argument("--time", type=float, default=0.0, help="seconds into the video")
    parser.add_argument("--out", required=True, help="output image (.png/.jpg)")
    args = parser.parse_args(argv)
    try:
        box = preset_box(args.preset, args.presets) if args.preset else parse_crop(args.crop)
        write_preview(args.video, box, args.out, args.time)
    except CurationError as error:
        raise SystemExit(f"error: {error}") from error
    print(f"wrote {args.out} with the box {box.relative()} ({box.source})")


if __name__ == "__main__":
    main()
