"""Pose extractor backends: one BGR frame in, one signer's 133 COCO-WholeBody keypoints out.

A backend is a callable `backend(frame_bgr) -> (keypoints (133, 2) x/W y/H float32, scores (133,) float32)`
with `start_video()` (forget tracking state before a new video) and `close()`.

* `mediapipe` (default): MediaPipe Holistic 0.10.14, whose models ship inside the wheel, so it runs
  offline (model_complexity=1). Mapped onto COCO-WholeBody by `pose_extraction.mapping`.
* `rtmlib`: the paper's RTMPose/RTMW whole-body model through rtmlib, from local ONNX files only
  (rtmlib would otherwise download them). Several people -> `datasets.formats.select_main_signer`.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.formats import select_main_signer
from datasets.keypoints import NUM_KEYPOINTS
from pose_extraction.mapping import holistic_to_wholebody, landmarks_to_array, pixels_to_normalised

BACKENDS = ("mediapipe", "rtmlib")
MEDIAPIPE_VERSION = "0.10.14"
MEDIAPIPE_INSTALL = f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}"
HOLISTIC_GRAPH = "mediapipe/modules/holistic_landmark/holistic_landmark_cpu.binarypb"
HOLISTIC_POSE_MODEL = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"  # model_complexity=1
HOLISTIC_OUTPUTS = ["pose_landmarks", "left_hand_landmarks", "right_hand_landmarks", "face_landmarks"]


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says what to install or pass."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend (picklable, so worker processes can build their own)."""

    name: str = "mediapipe"
    static_image_mode: bool = False  # mediapipe: True treats every frame as an unrelated photo (no tracking)
    det: str | None = None  # rtmlib: local detector ONNX file (YOLOX)
    pose: str | None = None  # rtmlib: local whole-body pose ONNX file (RTMPose / RTMW / DWPose)
    det_input_size: tuple = (640, 640)  # rtmlib: (width, height) the detector was exported with
    pose_input_size: tuple = (288, 384)  # rtmlib: (width, height) the pose model was exported with
    device: str = "cpu"  # rtmlib: onnxruntime device


def empty_pose():
    """Keypoints (133, 2) and scores (133,) of a frame where nobody was found."""
    return np.zeros((NUM_KEYPOINTS, 2), np.float32), np.zeros(NUM_KEYPOINTS, np.float32)


# ----------------------------------------------------------------------------- MediaPipe


def _protobuf_compat():
    """Give protobuf >= 5 the `GetPrototype` alias that mediapipe 0.10.14 still calls.

    Protobuf removed `MessageFactory.GetPrototype` / `SymbolDatabase.GetPrototype` in favour of
    `message_factory.GetMessageClass`, which is exactly what the old methods returned. Adding the alias
    back changes nothing for code that does not call it (and nothing at all on protobuf 4.x).
    """
    from google.protobuf import message_factory, symbol_database

    def get_prototype(self, descriptor):
        return message_factory.GetMessageClass(descriptor)

    for cls in (message_factory.MessageFactory, symbol_database.SymbolDatabase):
        if not hasattr(cls, "GetPrototype"):
            cls.GetPrototype = get_prototype


def import_mediapipe():
    """The mediapipe module, or BackendUnavailable saying how to install a version with Holistic."""
    try:
        _protobuf_compat()  # before mediapipe's first import: its protobuf bindings look the alias up then
        import mediapipe
    except ImportError as error:
        raise BackendUnavailable(
            f"the mediapipe backend needs MediaPipe {MEDIAPIPE_VERSION} ({error}). Install it with "
            f"`{MEDIAPIPE_INSTALL}` (--no-deps keeps this project's protobuf and opencv; see docs/video_to_text.md), "
            f"or use --backend rtmlib with local ONNX files."
        ) from error
    site = Path(mediapipe.__file__).parent.parent
    if not all((site / path).is_file() for path in (HOLISTIC_GRAPH, HOLISTIC_POSE_MODEL)):
        raise BackendUnavailable(
            f"mediapipe {getattr(mediapipe, '__version__', '?')} has no bundled Holistic graph/model "
            f"(0.10.30 and later ship only the Tasks API). Install `{MEDIAPIPE_INSTALL}`."
        )
    return mediapipe


class MediaPipeHolisticBackend:
    """MediaPipe Holistic (model_complexity=1, the only complexity whose model is in the wheel).

    Built from Holistic's graph through `SolutionBase` without `calculator_params`: the graph's own
    detection/tracking thresholds (0.5) are Holistic's defaults, and skipping them avoids a code path of
    mediapipe 0.10.14 that newer protobuf versions no longer support.
    """

    name = "mediapipe"

    def __init__(self, static_image_mode=False):
        import_mediapipe()
        from mediapipe.python.solution_base import SolutionBase

        tracking = not static_image_mode
        self._solution = SolutionBase(
            binary_graph_path=HOLISTIC_GRAPH,
            side_inputs={
                "model_complexity": 1,
                "smooth_landmarks": tracking,
                "enable_segmentation": False,
                "smooth_segmentation": tracking,
                "refine_face_landmarks": False,
                "use_prev_landmarks": tracking,
            },
            outputs=HOLISTIC_OUTPUTS,
        )

    def start_video(self):
        """Drop the tracking state of the previous video."""
        self._solution.reset()

    def __call__(self, frame_bgr):
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])  # (H, W, 3) uint8 RGB
        results = self._solution.process({"image": rgb})
        return holistic_to_wholebody(
            pose=landmarks_to_array(results.pose_landmarks, with_visibility=True),
            face=landmarks_to_array(results.face_landmarks),
            left_hand=landmarks_to_array(results.left_hand_landmarks),
            right_hand=landmarks_to_array(results.right_hand_landmarks),
        )

    def close(self):
        self._solution.close()


# ----------------------------------------------------------------------------- rtmlib


def import_rtmlib():
    try:
        import rtmlib
    except ImportError as error:
        raise BackendUnavailable(
            f"the rtmlib backend needs rtmlib and onnxruntime ({error}): `pip install rtmlib onnxruntime`, "
            f"then pass local ONNX files with --det PATH --pose PATH."
        ) from error
    return rtmlib


def check_rtmlib_files(det, pose):
    missing = [f"--{flag} {path or '(not given)'}" for flag, path in (("det", det), ("pose", pose))
               if not path or not Path(path).is_file()]
    if missing:
        raise BackendUnavailable(
            "the rtmlib backend runs offline only from local ONNX files (a detector and a whole-body pose "
            f"model); missing: {', '.join(missing)}"
        )


class RtmlibBackend:
    """rtmlib Wholebody (YOLOX person detector + RTMPose whole-body) from local ONNX files.

    Keypoints are divided by the frame size as in the official extraction script (not clipped); RTMPose
    scores are kept as they are (they can exceed 1). With several people, the main signer is kept.
    """

    name = "rtmlib"

    def __init__(self, det, pose, det_input_size=(640, 640), pose_input_size=(288, 384), device="cpu"):
        check_rtmlib_files(det, pose)
        rtmlib = import_rtmlib()
        self._model = rtmlib.Wholebody(
            det=str(det), det_input_size=tuple(det_input_size), pose=str(pose),
            pose_input_size=tuple(pose_input_size), to_openpose=False, backend="onnxruntime", device=device,
        )

    def start_video(self):
        pass

    def __call__(self, frame_bgr):
        height, width = frame_bgr.shape[:2]
        keypoints, scores = self._model(frame_bgr)  # (P, 133, 2) pixels, (P, 133)
        keypoints, scores = np.asarray(keypoints, np.float32), np.asarray(scores, np.float32)
        if keypoints.size == 0:
            return empty_pose()
        keypoints = pixels_to_normalised(keypoints.reshape(-1, NUM_KEYPOINTS, 2), width, height)
        keypoints, scores = select_main_signer(keypoints[None], scores.reshape(1, -1, NUM_KEYPOINTS))
        return keypoints[0], scores[0]

    def close(self):
        pass


# ----------------------------------------------------------------------------- factory


def check_backend(spec: BackendSpec):
    """Fail early (BackendUnavailable) when `spec` cannot run here, without loading any model."""
    if spec.name == "mediapipe":
        import_mediapipe()
    elif spec.name == "rtmlib":
        check_rtmlib_files(spec.det, spec.pose)
        import_rtmlib()
    else:
        raise BackendUnavailable(f"unknown pose backend '{spec.name}'; choose from {BACKENDS}")


def create_backend(spec: BackendSpec):
    check_backend(spec)
    if spec.name == "mediapipe":
        return MediaPipeHolisticBackend(static_image_mode=spec.static_image_mode)
    return RtmlibBackend(spec.det, spec.pose, spec.det_input_size, spec.pose_input_size, spec.device)
