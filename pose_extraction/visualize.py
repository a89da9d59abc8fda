"""Draw the 133 COCO-WholeBody keypoints of a pose file: over its video or on a blank canvas.

    python -m pose_extraction.visualize --pose FILE.pkl [--video VIDEO] --out OUT.mp4 [--contact-sheet N]
    python -m pose_extraction.visualize --pose FILE.pkl --out OUT.png [--contact-sheet N | --frame I]

Colours by part (BGR legend in PART_COLOURS): body, feet, face, the person's left hand, right hand.
Points/edges with score <= `threshold` (Uni-Sign's 0.3) are drawn faded, points with score 0 (missing)
are not drawn. An .mp4 output is the whole clip; a .png output is one frame (`--frame`) or, with
`--contact-sheet N`, a grid of N evenly spaced frames (with an .mp4 output the sheet goes to OUT_sheet.png).
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from datasets.formats import read_pose_file

PART_RANGES = {
    "body": range(0, 17),
    "feet": range(17, 23),
    "face": range(23, 91),
    "left_hand": range(91, 112),  # the person's left
    "right_hand": range(112, 133),
}
PART_COLOURS = {  # BGR
    "body": (255, 160, 0),  # blue
    "feet": (0, 200, 255),  # yellow-orange
    "face": (255, 255, 255),  # white
    "left_hand": (60, 220, 60),  # green
    "right_hand": (60, 60, 255),  # red
}
POINT_PART = np.empty(133, dtype=object)
for _part, _indices in PART_RANGES.items():
    POINT_PART[list(_indices)] = _part


def _chain(indices, closed=False):
    pairs = list(zip(indices[:-1], indices[1:]))
    return pairs + [(indices[-1], indices[0])] if closed else pairs


def _hand_edges(wrist):
    fingers = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20]]
    return [(wrist + a, wrist + b) for finger in fingers for a, b in _chain(finger)]


EDGES = {  # part -> list of (i, j) keypoint pairs
    "body": [(0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
             (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)],
    "feet": [(15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22)],
    "face": (_chain(list(range(23, 40))) + _chain(list(range(40, 45))) + _chain(list(range(45, 50)))
             + _chain(list(range(50, 54))) + _chain(list(range(54, 59))) + _chain(list(range(59, 65)), True)
             + _chain(list(range(65, 71)), True) + _chain(list(range(71, 83)), True)
             + _chain(list(range(83, 91)), True)),
    "left_hand": [(9, 91)] + _hand_edges(91),  # body wrist -> hand root, then the fingers
    "right_hand": [(10, 112)] + _hand_edges(112),
}
FADE_ALPHA = 0.35  # opacity of low-confidence points and edges


def draw_pose(image, keypoints, scores, threshold=0.3, radius=None, thickness=None):
    """Draw one frame's pose onto a BGR image in place and return it.

    keypoints (133, 2) in x/W, y/H; scores (133,). Confident items (score > threshold; an edge needs both
    ends) are drawn opaque, the others with score > 0 at FADE_ALPHA opacity; score 0 (missing) is skipped.
    """
    height, width = image.shape[:2]
    radius = radius or max(2, round(min(height, width) / 170))
    thickness = thickness or max(1, round(min(height, width) / 300))
    pixels = np.round(np.asarray(keypoints, np.float64) * (width, height)).astype(np.int32)  # (133, 2)
    scores = np.asarray(scores, np.float64)
    confident, present = scores > threshold, scores > 0
    if (present & ~confident).any():
        faded = image.copy()
        _draw_layer(faded, pixels, confident, present, False, radius, thickness)
        changed = np.any(faded != image, axis=-1)  # (H, W): only the drawn pixels are blended
        image[changed] = cv2.addWeighted(faded, FADE_ALPHA, image, 1 - FADE_ALPHA, 0)[changed]
    _draw_layer(image, pixels, confident, present, True, radius, thickness)
    return image


def _draw_layer(layer, pixels, confident, present, confident_layer, radius, thickness):
    """Draw either the confident or the low-confidence edges and points, coloured by part."""
    points = confident if confident_layer else present & ~confident
    for part, edges in EDGES.items():
        pairs = np.asarray(edges)  # (E, 2)
        strong = confident[pairs].all(axis=1)
        drawn = present[pairs].all(axis=1) & (strong if confident_layer else ~strong)
        if drawn.any():
            cv2.polylines(layer, list(pixels[pairs[drawn]]), False, PART_COLOURS[part], thickness, cv2.LINE_AA)
    for index in np.flatnonzero(points):
        cv2.circle(layer, (int(pixels[index, 0]), int(pixels[index, 1])), radius, PART_COLOURS[POINT_PART[index]],
                   -1, cv2.LINE_AA)


# ----------------------------------------------------------------------------- frames


def video_frames(video_path):
    """(frames generator of BGR images, fps) for a video file; ValueError when it cannot be opened."""
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        raise ValueError(f"{video_path}: cannot be opened as a video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0

    def frames():
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    return frames(), fps


def blank_frames(count, size, colour=(40, 40, 40)):
    """`count` uniform canvases of size (width, height)."""
    width, height = size
    for _ in range(count):
        yield np.full((height, width, 3), colour, np.uint8)


def render_frames(keypoints, scores, frames, threshold=0.3):
    """Yield (frame index, frame with its pose drawn) for min(len(poses), len(frames)) frames."""
    for index, (frame, frame_keypoints, frame_scores) in enumerate(zip(frames, keypoints, scores)):
        yield index, draw_pose(frame, frame_keypoints, frame_scores, threshold)


def label(image, text):
    """Write `text` in the top-left corner (in place)."""
    scale = max(0.4, image.shape[0] / 600)
    cv2.putText(image, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def sheet_indices(num_frames, count):
    """`count` evenly spaced frame indices over [0, num_frames) (all frames when there are fewer)."""
    count = max(1, min(count, num_frames))
    return np.unique(np.linspace(0, num_frames - 1, count).round().astype(int))


def contact_sheet(images, columns=None):
    """Tile equally sized images into a grid (row-major); empty cells are black."""
    columns = columns or int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / columns))
    height, width = images[0].shape[:2]
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for position, image in enumerate(images):
        row, column = divmod(position, columns)
        sheet[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return sheet


# ----------------------------------------------------------------------------- outputs


VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}  # VP8 WebM plays in browsers; OpenCV's mp4v does not


def open_writer(path, fps, size):
    """An OpenCV writer for `path`: mp4v for .mp4, VP8 for .webm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = VIDEO_CODECS[path.suffix.lower()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an {codec} video writer")
    return writer


def render(pose_path, out, video=None, contact_sheet_frames=0, frame=None, size=(512, 512), threshold=0.3):
    """Render a pose file; returns the list of files written. See the module docstring for the outputs."""
    clip = read_pose_file(pose_path)
    keypoints, scores = clip.keypoints, clip.scores  # (T, 133, 2), (T, 133)
    out = Path(out)
    if video is not None:
        frames, fps = video_frames(video)
    else:
        frames, fps = blank_frames(len(keypoints), size), 25.0
    wanted = set()
    if contact_sheet_frames:
        wanted = set(sheet_indices(len(keypoints), contact_sheet_frames).tolist())
    elif out.suffix.lower() == ".png":
        wanted = {len(keypoints) // 2 if frame is None else frame}
    writer, kept, written, count = None, {}, [], 0
    for index, image in render_frames(keypoints, scores, frames, threshold):
        count += 1
        if out.suffix.lower() == ".mp4":
            writer = writer or open_writer(out, fps, (image.shape[1], image.shape[0]))
            writer.write(image)
        if index in wanted:
            kept[index] = label(image.copy(), f"frame {index}")
    if writer is not None:
        writer.release()
        written.append(out)
    if count == 0:
        raise ValueError(f"{video or pose_path}: nothing to render (no frame)")
    if count < len(keypoints):
        print(f"warning: the video has {count} frames but the pose file {len(keypoints)}; rendered {count}",
              file=sys.stderr)
    if kept:
        sheet_path = out if out.suffix.lower() == ".png" else out.with_name(f"{out.stem}_sheet.png")
        images = [kept[index] for index in sorted(kept)]
        sheet_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet_path), contact_sheet(images) if contact_sheet_frames else images[0])
        written.append(sheet_path)
    elif out.suffix.lower() == ".png":
        raise ValueError(f"frame {frame} is outside the clip ({count} frames)")
    return written


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pose", required=True, help="pose file (.pkl official layout or .npz)")
    parser.add_argument("--video", default=None, help="draw over this video's frames (default: blank canvas)")
    parser.add_argument("--out", required=True, help="OUT.mp4 (the clip) or OUT.png (one frame or a sheet)")
    parser.add_argument("--contact-sheet", type=int, default=0, metavar="N", help="grid of N sampled frames")
    parser.add_argument("--frame", type=int, default=None, help="PNG output: which frame (default: the middle)")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("W", "H"),
                        help="blank canvas size when no --video is given")
    parser.add_argument("--threshold", type=float, default=0.3, help="scores at or below are drawn faded")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if Path(args.out).suffix.lower() not in (".mp4", ".png"):
        print("error: --out must end in .mp4 or .png", file=sys.stderr)
        return 2
    try:
        written = render(args.pose, args.out, args.video, args.contact_sheet, args.frame, tuple(args.size),
                         args.threshold)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
