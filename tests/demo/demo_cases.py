"""A tiny SLT checkpoint and synthetic rendered clips for the demo's tests (fixtures the test modules import; no
conftest.py here: a second module named `conftest` would shadow tests/conftest.py for the modules importing from it)."""
import numpy as np
import pytest

from datasets.synthetic import generate_corpus
from pose_extraction.visualize import video_frames
from runs.arguments import get_args_parser
from tests.utils.pictures import write_video
from utils.checkpoint import FORMAT, atomic_save


@pytest.fixture
def demo_checkpoint(tiny_model, tmp_path):
    """The tiny test model as train.py saves it (SLT, 4 new tokens at most)."""
    args = vars(get_args_parser().parse_args(["--task", "SLT", "--max_length", "32", "--max-new-tokens", "4"]))
    path = tmp_path / "slt.pth"
    atomic_save({"format": FORMAT, "model": tiny_model.state_dict(), "config": tiny_model.config.to_dict(), "epoch": 0,
                 "args": {key: value for key, value in args.items() if isinstance(value, (str, int, float, bool))}},
                path)
    return path


@pytest.fixture(scope="session")
def rendered_clip(tmp_path_factory):
    """A clip of the synthetic corpus rendered as video (a cartoon signer MediaPipe finds), 29 frames at 25 fps,
    re-encoded as VP8 WebM: the corpus writes OpenCV's mp4v, which browsers do not preview."""
    corpus = tmp_path_factory.mktemp("demo_corpus")
    generate_corpus(corpus, seed=0, size="tiny", videos=True)
    frames, _ = video_frames(corpus / "sentences" / "rgb_format" / "sent_dev_00000.mp4")
    return write_video(corpus / "sent_dev_00000.webm", list(frames), fourcc="VP80")


@pytest.fixture(scope="session")
def bad_uploads(tmp_path_factory):
    """{what: path} of the uploads the demo must refuse with a message."""
    folder = tmp_path_factory.mktemp("bad_uploads")
    (folder / "notes.mp4").write_text("this is text, not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    no_person = write_video(folder / "no_person.mp4", [np.full((96, 128, 3), 80, np.uint8)] * 3)
    long_clip = write_video(folder / "long.mp4", [np.full((32, 32, 3), 80, np.uint8)] * 125)  # 5 s at 25 fps
    return {"not a video": folder / "notes.mp4", "empty": folder / "empty.mp4", "no person": no_person,
            "too long": long_clip}
