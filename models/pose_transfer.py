"""Moving the pose encoder between CCL-SLR and Uni-Sign checkpoints (both use models/pose_encoder.PoseEncoder).

A CCL-SLR state dict holds it under 'encoders.pose.pose_encoder.', Uni-Sign's under 'pose_encoder.'.
"""
from utils.checkpoint import CheckpointError

POSE_ENCODER_PREFIXES = ("encoders.pose.pose_encoder.", "pose_encoder.")  # CCL-SLR, Uni-Sign


def pose_encoder_weights(state: dict, source) -> dict:
    """The pose encoder's weights of a checkpoint state ({'model': state dict}), keyed as PoseEncoder's own."""
    for prefix in POSE_ENCODER_PREFIXES:
        found = {key[len(prefix):]: value for key, value in state["model"].items() if key.startswith(prefix)}
        if found:
            return found
    raise CheckpointError(f"{source} holds no pose encoder weights (no {' or '.join(POSE_ENCODER_PREFIXES)} keys)")


def load_pose_encoder(pose_encoder, state: dict, source) -> list:
    """Copy a checkpoint's pose encoder into `pose_encoder`: every tensor of the same name and shape (pose_proj
    stays as built when the widths differ). Returns the names not copied; CheckpointError when none fits."""
    weights, own = pose_encoder_weights(state, source), pose_encoder.state_dict()
    matching = {key: value for key, value in weights.items() if key in own and own[key].shape == value.shape}
    if not matching:
        raise CheckpointError(f"{source}: its pose encoder does not match this one (another --pose-preset?)")
    pose_encoder.load_state_dict(matching, strict=False)
    return sorted(set(own) - set(matching))


def describe_transfer(source, left) -> str:
    return f"pose encoder initialised from {source}" + (f"; kept as built: {', '.join(left)}" if left else "")
