"""Real test pictures that install offline, and small generated videos built from them.

messi5.jpg (full body, both hands visible) comes with Debian's `opencv-doc` package; scikit-image's
`data.astronaut()` (body and face, no hands) with scikit-image. Helpers skip the test when missing.
"""
import gzip
from pathlib import Path

import numpy as np
import pytest

MESSI_CANDIDATES = [Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg"),
                    Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg.gz")]


def messi_bgr():
    """messi5.jpg as a (342, 548, 3) BGR array, or skip."""
    import cv2

    for path in MESSI_CANDIDATES:
        if path.is_file():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                return image
    pytest.skip("messi5.jpg not found (install Debian's opencv-doc)")


def astronaut_bgr():
    """scikit-image's astronaut as a (512, 512, 3) BGR array, or skip."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is not installed")
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def mediapipe_backend(static_image_mode=True):
    """A MediaPipe Holistic backend, or skip when mediapipe is not installed."""
    from pose_extraction.backends import BackendUnavailable, MediaPipeHolisticBackend

    try:
        return MediaPipeHolisticBackend(static_image_mode=static_image_mode)
    except BackendUnavailable as error:
        pytest.skip(str(error))


def require_mediapipe():
    from pose_extraction.backends import BackendUnavailable, import_mediapipe

    try:
        import_mediapipe()
    except BackendUnavailable as error:
        pytest.skip(str(error))


def write_video(path, frames, fps=25.0, fourcc="mp4v"):
    """Write BGR frames (all the same size) with cv2.VideoWriter; returns the path."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2] if len(frames) else (64, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def shifted_frames(image, count, step=6):
    """`count` copies of `image`, each shifted `step` more pixels to the right (wrapping around)."""
    return [np.roll(image, step * index, axis=1) for index in range(count)]
