"""MediaPipe Holistic landmarks -> the 133-point COCO-WholeBody layout Uni-Sign reads.

COCO-WholeBody: body 0-16, feet 17-22, face 23-90 (the 68 iBUG-300W points), left hand 91-111,
right hand 112-132 ("left"/"right" = the person's own side). Holistic gives BlazePose (33 points with a
per-point visibility), FaceMesh (468 points, no confidence) and two 21-point hands (no confidence) whose
order already is the COCO-WholeBody/OpenPose hand order (wrist, thumb CMC..tip, index MCP..tip, ...).
Holistic's `left_hand_landmarks` is the person's left hand (it is tied to BlazePose's left wrist).

Everything here is plain numpy so it can be tested without MediaPipe.
"""
import numpy as np

from datasets.keypoints import NUM_KEYPOINTS

# COCO-WholeBody index -> BlazePose index, body (0-16) then feet (17-22).
BODY_FROM_BLAZEPOSE = [
    0,   # 0 nose            <- 0 nose
    2,   # 1 left eye        <- 2 left_eye (centre; 1/3 are its inner/outer corners)
    5,   # 2 right eye       <- 5 right_eye
    7,   # 3 left ear        <- 7 left_ear
    8,   # 4 right ear       <- 8 right_ear
    11,  # 5 left shoulder   <- 11
    12,  # 6 right shoulder  <- 12
    13,  # 7 left elbow      <- 13
    14,  # 8 right elbow     <- 14
    15,  # 9 left wrist      <- 15
    16,  # 10 right wrist    <- 16
    23,  # 11 left hip       <- 23
    24,  # 12 right hip      <- 24
    25,  # 13 left knee      <- 25
    26,  # 14 right knee     <- 26
    27,  # 15 left ankle     <- 27
    28,  # 16 right ankle    <- 28
]
FEET_FROM_BLAZEPOSE = [
    31,  # 17 left big toe   <- 31 left_foot_index (tip of the foot; approximation)
    31,  # 18 left small toe <- 31 left_foot_index (BlazePose has no small toe; same point)
    29,  # 19 left heel      <- 29 left_heel
    32,  # 20 right big toe  <- 32 right_foot_index (approximation)
    32,  # 21 right small toe <- 32 right_foot_index (no small toe; same point)
    30,  # 22 right heel     <- 30 right_heel
]
POSE_FROM_BLAZEPOSE = BODY_FROM_BLAZEPOSE + FEET_FROM_BLAZEPOSE  # COCO 0..22

# iBUG-300W 68-point face (COCO-WholeBody 23 + i) <- FaceMesh index. "Right" is the person's right
# (the image left of a frontal face), as in 300W. Single-index approximation of the usual mapping.
FACE_FROM_FACEMESH = [
    # jaw 0-16 (COCO 23-39), from the person's right temple over the chin (8 = COCO 31) to the left
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107,  # right eyebrow 17-21 (COCO 40-44), outer -> inner
    336, 296, 334, 293, 300,  # left eyebrow 22-26 (COCO 45-49), inner -> outer
    168, 197, 5, 1,  # nose bridge 27-30 (COCO 50-53); 30 = nose tip = FaceMesh 1 (COCO 53, Uni-Sign's face root)
    75, 97, 2, 326, 305,  # nose base 31-35 (COCO 54-58), right ala -> left ala
    33, 160, 158, 133, 153, 144,  # right eye 36-41 (COCO 59-64): outer corner, top, inner corner, bottom
    362, 385, 387, 263, 373, 380,  # left eye 42-47 (COCO 65-70): inner corner, top, outer corner, bottom
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips 48-59 (COCO 71-82), right corner clockwise
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67 (COCO 83-90): right corner, upper, left corner, lower
]

BODY_SLICE = slice(0, 23)  # body + feet
FACE_SLICE = slice(23, 91)
LEFT_HAND_SLICE = slice(91, 112)
RIGHT_HAND_SLICE = slice(112, 133)
NUM_BLAZEPOSE, NUM_FACEMESH, NUM_HAND = 33, 468, 21


def _in_frame(points):
    """(N, 2) normalised points -> (N,) bool, True where the point lies inside the image."""
    return np.all((points >= 0.0) & (points <= 1.0), axis=-1)


def holistic_to_wholebody(pose=None, face=None, left_hand=None, right_hand=None):
    """Assemble one frame's 133 COCO-WholeBody keypoints from Holistic's parts.

    pose: (33, 3) BlazePose x, y, visibility or None; face: (468+, 2) FaceMesh x, y or None;
    left_hand / right_hand: (21, 2) x, y of the person's left / right hand or None. All x/W, y/H.
    Returns keypoints (133, 2) float32 clipped to [0, 1] and scores (133,) float32: BlazePose visibility
    for body/feet, 1 for every point of a found face/hand, 0 for missing parts and for points that fall
    outside the image (they were not observed).
    """
    keypoints = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    scores = np.zeros(NUM_KEYPOINTS, np.float32)
    if pose is not None:
        pose = np.asarray(pose, np.float32)[POSE_FROM_BLAZEPOSE]  # (23, 3)
        keypoints[BODY_SLICE], scores[BODY_SLICE] = pose[:, :2], np.clip(pose[:, 2], 0.0, 1.0)
    if face is not None:
        keypoints[FACE_SLICE], scores[FACE_SLICE] = np.asarray(face, np.float32)[FACE_FROM_FACEMESH, :2], 1.0
    for part, points in ((LEFT_HAND_SLICE, left_hand), (RIGHT_HAND_SLICE, right_hand)):
        if points is not None:
            keypoints[part], scores[part] = np.asarray(points, np.float32)[:, :2], 1.0
    scores[~_in_frame(keypoints)] = 0.0
    return np.clip(keypoints, 0.0, 1.0), scores


def landmarks_to_array(landmark_list, with_visibility=False):
    """A MediaPipe NormalizedLandmarkList (or None) -> (N, 2) / (N, 3) float32 array (or None)."""
    if landmark_list is None:
        return None
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in landmark_list.landmark], np.float32)
    return np.array([(p.x, p.y) for p in landmark_list.landmark], np.float32)


def pixels_to_normalised(keypoints, width, height):
    """Pixel keypoints (..., 133, 2) -> x/W, y/H float32, unclipped (what the official RTMPose script writes)."""
    return (np.asarray(keypoints, np.float32) / np.array([width, height], np.float32)).astype(np.float32)
