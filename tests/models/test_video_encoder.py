"""The (2+1)D RGB encoder of CCL-SLR (models/video_encoder.py)."""
import torch

from models.video_encoder import VIDEO_PRESETS, VideoEncoder, VideoEncoderConfig


def test_a_clip_becomes_one_feature():
    encoder = VideoEncoder(VideoEncoderConfig(**VIDEO_PRESETS["tiny"])).eval()
    assert encoder(torch.randn(3, 4, 3, 32, 32)).shape == (3, 128)


def test_frames_are_mixed_so_their_order_matters():
    torch.manual_seed(0)
    encoder = VideoEncoder(VideoEncoderConfig(**VIDEO_PRESETS["tiny"])).eval()
    video = torch.randn(1, 6, 3, 32, 32)
    assert not torch.allclose(encoder(video), encoder(video.flip(1)), atol=1e-6)
