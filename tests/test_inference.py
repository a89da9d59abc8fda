"""Online inference: checkpoint -> SignTranslator -> text, from pose files and from videos.

The model is the tiny test model (tests/conftest.py) saved in train.py's checkpoint format. Video
tests need MediaPipe and messi5.jpg (Debian's opencv-doc) and skip without them.
"""
import json

import numpy as np
import pytest
import torch

from datasets.formats import LabelEntry, write_pose_pkl
from datasets.sign_dataset import SignDataset, collate_samples
from inference import InferenceError, SignTranslator
from inference import main as inference_main
from models.pretrained import ModelCard
from runs.arguments import get_args_parser
from tests.utils.pictures import messi_bgr, require_mediapipe, shifted_frames, write_video
from utils.checkpoint import FORMAT, atomic_save

MAX_NEW_TOKENS = 5


def plausible_pose(frames, seed=0):
    """Keypoints (T, 133, 2) around a standing figure, with a little motion, and confident scores."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, size=(133, 2))
    keypoints = base + 0.02 * rng.standard_normal((frames, 133, 2))
    return np.clip(keypoints, 0, 1).astype(np.float32), np.full((frames, 133), 0.9, np.float32)


def save(model, path, *flags):
    """Save `model` as train.py does (utils/checkpoint.py format), recording the training flags `flags`."""
    args = vars(get_args_parser().parse_args(list(flags)))
    atomic_save({"format": FORMAT, "model": model.state_dict(), "config": model.config.to_dict(), "epoch": 0,
                 "args": {key: value for key, value in args.items() if isinstance(value, (str, int, float, bool))}},
                path)
    return path


@pytest.fixture
def slt_checkpoint(tiny_model, tmp_path):
    return save(tiny_model, tmp_path / "slt.pth", "--task", "SLT", "--max_length", "16",
                "--max-new-tokens", str(MAX_NEW_TOKENS))


@pytest.fixture
def pose_file(tmp_path):
    write_pose_pkl(tmp_path / "poses" / "clip.pkl", *plausible_pose(12))
    return tmp_path / "poses" / "clip.pkl"


def test_pose_file_translation_matches_the_dataset_path(slt_checkpoint, tiny_lm_dir, pose_file):
    translator = SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, device="cpu")
    assert (translator.task, translator.max_length, translator.max_new_tokens) == ("SLT", 16, MAX_NEW_TOKENS)
    result = translator.translate(pose_file)
    assert isinstance(result.text, str) and result.num_frames == 12 and result.candidates == []
    # the same clip through SignDataset + collate (what training and evaluation use)
    dataset = SignDataset([LabelEntry("clip", "x", video_path="clip.mp4")], pose_file.parent, max_length=16)
    batch = collate_samples([dataset[0]])
    expected = translator.model.generate(batch["parts"], batch["frame_mask"], num_beams=4,
                                         max_new_tokens=MAX_NEW_TOKENS)
    assert result.text == expected[0]
    assert translator.translate(pose_file).text == result.text  # deterministic


def test_a_saved_directory_translates_as_its_checkpoint_without_a_language_model_path(
        slt_checkpoint, tiny_lm_dir, pose_file, tmp_path):
    from_file = SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, device="cpu")
    card = ModelCard(task="CSLR", max_length=16, decoding={"num_beams": 4, "max_new_tokens": MAX_NEW_TOKENS})
    from_file.model.save_pretrained(tmp_path / "best", card)
    from_directory = SignTranslator.from_checkpoint(tmp_path / "best", device="cpu")
    # read from the directory (the model's own config says 100 new tokens)
    assert (from_directory.task, from_directory.max_length, from_directory.max_new_tokens) == ("CSLR", 16, MAX_NEW_TOKENS)
    assert from_directory.translate(pose_file).text == from_file.translate(pose_file).text
    assert inference_main(["--video", str(pose_file), "--finetune", str(tmp_path / "best")]) == 0


def test_long_clips_are_sub_sampled_reproducibly(slt_checkpoint, tiny_lm_dir):
    translator = SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, device="cpu")
    keypoints, scores = plausible_pose(40)
    clip, _ = translator.load_clip((keypoints, scores))
    parts, mask, frames = translator.model_inputs(clip)
    assert parts["left"].shape == (1, 16, 21, 3) and mask.shape == (1, 16)
    assert (np.diff(frames) > 0).all() and frames.max() < 40
    assert (translator.model_inputs(clip)[2] == frames).all()


def test_islr_top_k_beams_and_closed_set_ranking(tiny_model, tiny_lm_dir, tmp_path, pose_file):
    checkpoint = save(tiny_model, tmp_path / "islr.pth", "--task", "ISLR", "--max-new-tokens", "4")
    translator = SignTranslator.from_checkpoint(checkpoint, tiny_lm_dir, device="cpu")
    assert translator.task == "ISLR"
    result = translator.translate(pose_file, topk=3)
    scores = [score for _, score in result.candidates]
    assert len(result.candidates) == 3 and scores == sorted(scores, reverse=True)
    assert result.text == result.candidates[0][0]

    classes = ["hello", "world", "store", "today"]
    ranked = SignTranslator.from_checkpoint(checkpoint, tiny_lm_dir, device="cpu", classes=classes)
    result = ranked.translate(pose_file, topk=2)
    parts, mask, _ = ranked.model_inputs(ranked.load_clip(pose_file)[0])
    likelihood = ranked.model.score_candidates(parts, mask, classes)[0]
    assert result.text == classes[int(likelihood.argmax())]
    probabilities = [score for _, score in result.candidates]
    assert len(probabilities) == 2 and probabilities[0] >= probabilities[1] and sum(probabilities) <= 1 + 1e-9
    np.testing.assert_allclose(probabilities[0], float(likelihood.double().softmax(-1).max()), rtol=1e-6)


def test_rgb_inference_needs_an_rgb_checkpoint(slt_checkpoint, tiny_lm_dir, pose_file, capsys):
    with pytest.raises(InferenceError, match="RGB-pose inference needs a checkpoint trained with --rgb_support"):
        SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, rgb_support=True, device="cpu")
    argv = ["--video", str(pose_file), "--finetune", str(slt_checkpoint), "--lm-path", str(tiny_lm_dir)]
    assert inference_main(argv + ["--rgb_support"]) == 2
    assert "trained with --rgb_support" in capsys.readouterr().err


def test_cli_prints_translations_and_json(slt_checkpoint, tiny_lm_dir, pose_file, tmp_path, capsys):
    argv = ["--video", str(pose_file), str(pose_file), "--finetune", str(slt_checkpoint),
            "--lm-path", str(tiny_lm_dir), "--device", "cpu"]
    assert inference_main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{pose_file}: ")
    assert inference_main(argv[:2] + argv[3:] + ["--json", "--topk", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["frames"] == 12 and len(record["candidates"]) == 2
    assert inference_main(["--video", str(tmp_path / "missing.pkl")] + argv[3:]) == 1  # one bad clip
    assert "pose file not found" in capsys.readouterr().err
    assert inference_main(["--video", str(pose_file), "--finetune", str(tmp_path / "no.pth"),
                           "--lm-path", str(tiny_lm_dir)]) == 2


# ----------------------------------------------------------------------------- from videos


@pytest.fixture(scope="module")
def messi_video(tmp_path_factory):
    require_mediapipe()
    return write_video(tmp_path_factory.mktemp("video") / "messi.mp4", shifted_frames(messi_bgr(), 3))


def test_video_translation_extracts_poses_once_per_clip(slt_checkpoint, tiny_lm_dir, messi_video):
    translator = SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, device="cpu")
    first, second = translator.translate_many([messi_video, messi_video])
    backend = translator._backend
    assert first.num_frames == 3 and first.text == second.text and isinstance(first.text, str)
    clip, video = translator.load_clip(messi_video)
    assert translator._backend is backend and video == messi_video  # the extractor is built once
    assert (clip.scores[:, 91:] > 0).all()  # both hands found in every frame
    translator.close()


def test_video_without_a_person_is_a_clear_error(slt_checkpoint, tiny_lm_dir, tmp_path):
    require_mediapipe()
    blank = write_video(tmp_path / "blank.mp4", [np.full((96, 128, 3), 80, np.uint8)] * 2)
    translator = SignTranslator.from_checkpoint(slt_checkpoint, tiny_lm_dir, device="cpu")
    with pytest.raises(InferenceError, match="no person detected"):
        translator.translate(blank)


def test_rgb_pose_inference_from_a_video(tiny_lm_dir, tmp_path, messi_video, pose_file):
    from models.hand_fusion import RGBConfig
    from models.pose_encoder import PoseEncoderConfig
    from models.uni_sign import UniSign, UniSignConfig

    torch.manual_seed(0)
    config = UniSignConfig(lang="English", pose=PoseEncoderConfig(proj_dim=8, spatial_widths=(8, 16, 16)),
                           rgb=RGBConfig())
    model = UniSign.from_lm_path(config, tiny_lm_dir)
    checkpoint = save(model, tmp_path / "rgb.pth", "--rgb_support", "--rgb-sample-ratio", "0.5",
                      "--max-new-tokens", "3")
    translator = SignTranslator.from_checkpoint(checkpoint, tiny_lm_dir, rgb_support=True, device="cpu")
    assert translator.model.pose_encoder.hand_fusion is not None
    assert translator.rgb_sampling.sample_ratio == 0.5  # the flag it was trained with
    result = translator.translate(messi_video)
    assert isinstance(result.text, str) and result.num_frames == 3
    with pytest.raises(InferenceError, match="needs the video"):
        translator.translate(pose_file)


def test_pose_files_outside_the_frame_are_refused_unless_forced(slt_checkpoint, tiny_lm_dir, tmp_path, capsys):
    keypoints, scores = plausible_pose(12)
    write_pose_pkl(tmp_path / "pixels.pkl", keypoints * 640, scores)  # pixel coordinates, not x/width
    argv = ["--video", str(tmp_path / "pixels.pkl"), "--finetune", str(slt_checkpoint), "--lm-path", str(tiny_lm_dir)]
    assert inference_main(argv) == 1
    error = capsys.readouterr().err
    assert f"error: {tmp_path / 'pixels.pkl'}: field 'keypoints': 1596 confident points lie outside [0, 1]" in error
    assert "pass --force" in error
    assert inference_main(argv + ["--force"]) == 0


def test_pose_files_over_the_frame_limit_are_refused_unread(slt_checkpoint, tiny_lm_dir, pose_file, capsys):
    argv = ["--video", str(pose_file), "--finetune", str(slt_checkpoint), "--lm-path", str(tiny_lm_dir)]
    assert inference_main(argv + ["--max-frames", "10"]) == 1
    assert "field 'keypoints' has 12 frames, more than the limit of 10" in capsys.readouterr().err
