"""A small synthetic broadcast to try the curation pipeline without data (and to test it).

Each video has a blue-ish "studio" background and a grey signer inset at `INSET` (relative coordinates,
the same convention as crop boxes). The inset shows the frame number as a 10-bit code (2 rows x 5 cells in
its top half, white = 1) and a dark bar moving across its bottom half, so `frame_index` can read back which
source frame a cropped clip frame came from. Subtitles are SRT files of Chinese news-like sentences.

    python -m curation.demo --out DIR [--videos 2] [--seconds 60] [--seed 0]
    python -m curation.pipeline --videos DIR/videos --subtitles DIR/subtitles --crop 0.5,0.5,1,1 --out DIR/corpus
"""
import argparse
from pathlib import Path

import numpy as np

FRAME_SIZE = (160, 120)  # width, height
FPS = 10
INSET = (0.5, 0.5, 1.0, 1.0)
INSET_GREY = 160
BACKGROUND_BGR = (170, 70, 40)
CODE_COLUMNS, CODE_ROWS = 5, 2
PHRASES = ("今天上午", "国务院召开常务会议", "部署推进乡村振兴", "全国多地气温回升", "春耕生产有序开展",
           "记者从交通运输部获悉", "铁路客流持续增长", "科技创新成果丰硕", "各地开展志愿服务活动",
           "专家提醒", "注意防寒保暖", "残疾人就业服务", "持续优化", "这是今天的主要内容")


def inset_image(index, width, height) -> np.ndarray:
    """The inset content of frame `index`: (height, width, 3) uint8, grey with the frame code and a moving bar."""
    image = np.full((height, width, 3), INSET_GREY, np.uint8)
    cell_width, cell_height = width // CODE_COLUMNS, height // (2 * CODE_ROWS)
    for bit in range(CODE_COLUMNS * CODE_ROWS):
        row, column = divmod(bit, CODE_COLUMNS)
        value = 255 if (index >> bit) & 1 else 0
        image[row * cell_height:(row + 1) * cell_height, column * cell_width:(column + 1) * cell_width] = value
    bar_width = max(2, width // 8)
    left = (index * 3) % (width - bar_width)
    image[height // 2:, left:left + bar_width] = 40
    return image


def frame_index(crop) -> int:
    """Read the frame number back from a cropped inset image (BGR, exactly the inset region)."""
    height, width = crop.shape[:2]
    cell_width, cell_height = width // CODE_COLUMNS, height // (2 * CODE_ROWS)
    index = 0
    for bit in range(CODE_COLUMNS * CODE_ROWS):
        row, column = divmod(bit, CODE_COLUMNS)
        cell = crop[row * cell_height:(row + 1) * cell_height, column * cell_width:(column + 1) * cell_width]
        margin_y, margin_x = cell_height // 4, cell_width // 4
        if cell[margin_y:-margin_y, margin_x:-margin_x].mean() > 128:
            index |= 1 << bit
    return index


def inset_pixels(size=FRAME_SIZE, inset=INSET) -> tuple:
    """The inset's pixel box (x0, y0, x1, y1) in a frame of `size`."""
    width, height = size
    return (round(inset[0] * width), round(inset[1] * height), round(inset[2] * width), round(inset[3] * height))


def broadcast_frame(index, size=FRAME_SIZE, inset=INSET) -> np.ndarray:
    """One full frame: background with a moving stripe, the inset pasted at its box."""
    width, height = size
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BACKGROUND_BGR
    stripe = (index * 4) % width
    frame[:, stripe:stripe + 6] = (200, 120, 60)
    x0, y0, x1, y1 = inset_pixels(size, inset)
    frame[y0:y1, x0:x1] = inset_image(index, x1 - x0, y1 - y0)
    return frame


def write_broadcast(path, seconds, fps=FPS, size=FRAME_SIZE, inset=INSET) -> int:
    """Write an mp4v video of `seconds` at `fps`; returns its number of frames."""
    import cv2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an mp4v video writer")
    frames = int(round(seconds * fps))
    for index in range(frames):
        writer.write(broadcast_frame(index, size, inset))
    writer.release()
    return frames


def srt_time(seconds) -> str:
    milliseconds = int(round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d},{rest % 1000:03d}"


def srt_text(cues) -> str:
    """SRT file content for (start, end, text) cues."""
    blocks = [f"{number}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n"
              for number, (start, end, text) in enumerate(cues, start=1)]
    return "\n".join(blocks)


def demo_cues(seconds, rng) -> list:
    """News-like cues: 1-3 phrases each, about 4 characters per second, sometimes a pause."""
    cues, time = [], 0.5
    while True:
        phrases = rng.choice(PHRASES, size=int(rng.integers(1, 4)))
        text = "，".join(phrases) + str(rng.choice(["。", "，", "。", "！", "？", ""]))
        end = time + len(text) / rng.uniform(3.0, 5.0)
        if end > seconds:
            return cues
        cues.append((time, end, text))
        time = end + (rng.uniform(1.0, 2.0) if rng.random() < 0.15 else 0.0)


def make_demo(out_dir, videos=2, seconds=60.0, seed=0) -> tuple:
    """Write out_dir/videos/news_NN.mp4 and out_dir/subtitles/news_NN.srt; returns the two folders."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    for number in range(videos):
        write_broadcast(out_dir / "videos" / f"news_{number:02d}.mp4", seconds)
        subtitles = out_dir / "subtitles" / f"news_{number:02d}.srt"
        subtitles.parent.mkdir(parents=True, exist_ok=True)
        subtitles.write_text(srt_text(demo_cues(seconds, rng)), encoding="utf-8")
    return out_dir / "videos", out_dir / "subtitles"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a small synthetic broadcast (videos + SRT subtitles).")
    parser.add_argument("--out", required=True)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    videos, subtitles = make_demo(args.out, args.videos, args.seconds, args.seed)
    print(f"wrote {args.videos} videos to {videos} and their subtitles to {subtitles}; signer inset at {INSET}")


if __name__ == "__main__":
    main()
