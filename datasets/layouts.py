"""Other keypoint layouts -> the 133-point COCO-WholeBody layout Uni-Sign reads (plain numpy, vectorised).

COCO-WholeBody: body 0-16, feet 17-22, face 23-90 (the 68 iBUG-300W points), left hand 91-111,
right hand 112-132 ("left"/"right" = the person's own side).

- MediaPipe Holistic (what pose_extraction's MediaPipe backend sees, and what `pose-format`'s `video_to_pose`
  stores): BlazePose (33 points with a per-point visibility), FaceMesh (468 points, or 478 with the irises;
  no confidence) and two 21-point hands (no confidence) whose order already is the COCO-WholeBody/OpenPose
  hand order (wrist, thumb CMC..tip, index MCP..tip, ...). Holistic's left hand is the person's left hand.
- OpenPose 137 (BODY_25 + 70 face points + two 21-point hands, OpenPose's documented output order): BODY_25
  names every COCO-WholeBody body and foot point; its first 68 face points are the iBUG-300W points in
  COCO-WholeBody's order (the last two are the pupils, dropped).
"""
import numpy as np


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


# COCO-WholeBody body + feet (0-22) <- OpenPose BODY_25 index.
POSE_FROM_BODY25 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11, 19, 20, 21, 22, 23, 24]

BODY_SLICE = slice(0, 23)  # body + feet
FACE_SLICE = slice(23, 91)
LEFT_HAND_SLICE = slice(91, 112)
RIGHT_HAND_SLICE = slice(112, 133)
NUM_BLAZEPOSE, NUM_FACEMESH, NUM_HAND, NUM_BODY25, NUM_OPENPOSE_FACE = 33, 468, 21, 25, 70


def assemble_wholebody(body, face, left_hand, right_hand):
    """Parts already in COCO-WholeBody order -> keypoints (T, 133, 2) clipped to [0, 1], scores (T, 133).

    body (T, 23, 3), face (T, 68, 3), hands (T, 21, 3): x/W, y/H, confidence (0 = not found). Points outside
    the image get score 0 (they were not observed)."""
    parts = np.concatenate([body, face, left_hand, right_hand], axis=-2).astype(np.float32)  # (T, 133, 3)
    keypoints, scores = parts[..., :2], np.clip(parts[..., 2], 0.0, 1.0)
    inside = np.all((keypoints >= 0.0) & (keypoints <= 1.0), axis=-1)
    return np.clip(keypoints, 0.0, 1.0), np.where(inside, scores, 0.0).astype(np.float32)


def holistic_to_wholebody_frames(pose, face, left_hand, right_hand):
    """MediaPipe Holistic parts of T frames -> COCO-WholeBody keypoints (T, 133, 2), scores (T, 133).

    pose (T, 33, 3) x, y, visibility; face (T, 468+, 3), hands (T, 21, 3) x, y, found (1) or not (0); all x/W, y/H.
    Scores: the visibility for body and feet, 1 for every point of a found face or hand."""
    pose, face = np.asarray(pose, np.float32), np.asarray(face, np.float32)
    return assemble_wholebody(pose[..., POSE_FROM_BLAZEPOSE, :], face[..., FACE_FROM_FACEMESH, :],
                              np.asarray(left_hand, np.float32), np.asarray(right_hand, np.float32))


def openpose_to_wholebody_frames(body, face, left_hand, right_hand):
    """OpenPose 137 parts of T frames (BODY_25 (T, 25, 3), face (T, 70, 3), hands (T, 21, 3); x/W, y/H,
    confidence) -> COCO-WholeBody keypoints (T, 133, 2), scores (T, 133)."""
    body, face = np.asarray(body, np.float32), np.asarray(face, np.float32)
    return assemble_wholebody(body[..., POSE_FROM_BODY25, :], face[..., :68, :],
                              np.asarray(left_hand, np.float32), np.asarray(right_hand, np.float32))
