"""demo/service.py: one upload -> checks, poses, skeleton video, the model's text; clear refusals."""
import json

import cv2
import numpy as np
import pytest

from datasets.formats import write_pose_pkl
from demo.service import DemoInputError, DemoLimits, DemoService
from inference import SignTranslator
from inference import main as inference_main
from tests.demo.demo_cases import bad_uploads, demo_checkpoint, rendered_clip  # noqa: F401 (fixtures)
from tests.utils.pictures import require_mediapipe


@pytest.fixture
def service(demo_checkpoint, tiny_lm_dir, tmp_path):
    translator = SignTranslator.from_checkpoint(demo_checkpoint, tiny_lm_dir, device="cpu")
    yield DemoService(translator, DemoLimits(max_seconds=3.0, max_frames=75), tmp_path / "work")
    translator.close()


def inference_text(clip, checkpoint, lm_dir, capsys) -> str:
    """What `python inference.py --json` prints for the clip."""
    capsys.readouterr()
    assert inference_main(["--video", str(clip), "--finetune", str(checkpoint), "--lm-path", str(lm_dir), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["text"]


def decoded_frames(video) -> int:
    capture, count = cv2.VideoCapture(str(video)), 0
    while capture.read()[0]:
        count += 1
    return count


def test_a_pose_file_gives_inference_py_text_and_a_skeleton_video(service, demo_checkpoint, tiny_lm_dir, tmp_path,
                                                                   capsys):
    rng = np.random.default_rng(0)
    keypoints = np.clip(rng.uniform(0.3, 0.7, (1, 133, 2)) + 0.02 * rng.standard_normal((20, 133, 2)), 0, 1)
    pose_file = tmp_path / "clip.pkl"
    write_pose_pkl(pose_file, keypoints.astype(np.float32), np.full((20, 133), 0.9, np.float32))
    stages = []
    result = service.run(pose_file=pose_file, progress=lambda fraction, text: stages.append((fraction, text)))
    assert result.text == inference_text(pose_file, demo_checkpoint, tiny_lm_dir, capsys)
    assert result.num_frames == 20 and result.candidates == []
    assert result.skeleton_video.suffix == ".webm" and decoded_frames(result.skeleton_video) == 20
    assert [fraction for fraction, _ in stages] == sorted(fraction for fraction, _ in stages) and stages[-1][0] == 1.0


def test_a_rendered_video_gives_inference_py_text(service, rendered_clip, demo_checkpoint, tiny_lm_dir, capsys):
    require_mediapipe()
    result = service.run(video=rendered_clip)
    assert result.text == inference_text(rendered_clip, demo_checkpoint, tiny_lm_dir, capsys)
    assert decoded_frames(result.skeleton_video) == decoded_frames(rendered_clip) == result.num_frames


@pytest.mark.parametrize("what,message", [("not a video", "notes.mp4: not a readable video"),
                                          ("empty", "empty.mp4: the upload is empty"),
                                          ("no person", "no_person.mp4: no person found"),
                                          ("too long", "long.mp4: the clip lasts 5 s; this demo takes clips up to 3 s")])
def test_bad_uploads_are_refused_with_a_message_naming_the_file(service, bad_uploads, what, message):
    if what == "no person":
        require_mediapipe()
    with pytest.raises(DemoInputError, match=message):
        service.run(video=bad_uploads[what])


def test_no_input_two_inputs_and_other_files_are_refused(service, bad_uploads, tmp_path):
    with pytest.raises(DemoInputError, match="nothing to translate"):
        service.run()
    with pytest.raises(DemoInputError, match="both a video and a pose file"):
        service.run(video=bad_uploads["too long"], pose_file=bad_uploads["too long"])
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(DemoInputError, match=r"photo.jpg: not a video or a pose file \(.pkl, .npz, .pose\)"):
        service.run(pose_file=tmp_path / "photo.jpg")
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DemoInputError, match="broken.pkl"):
        service.run(pose_file=tmp_path / "broken.pkl")


def test_islr_shows_the_five_best_signs_of_the_class_list(tiny_model, tiny_lm_dir, tmp_path):
    classes = ["hello", "world", "store", "today", "go", "tomorrow"]
    translator = SignTranslator(tiny_model.eval(), task="ISLR", classes=classes)
    rng = np.random.default_rng(1)
    pose_file = tmp_path / "sign.pkl"
    write_pose_pkl(pose_file, rng.uniform(0.3, 0.7, (8, 133, 2)).astype(np.float32), np.full((8, 133), 0.9, np.float32))
    result = DemoService(translator, work_dir=tmp_path / "work").run(pose_file=pose_file)
    assert len(result.candidates) == 5 and result.text == result.candidates[0][0]
    assert result.candidates == translator.translate(pose_file, topk=5).candidates
    assert "probability" in result.score_kind
