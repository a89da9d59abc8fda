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


def test_pool_grid_one_is_the_global_average_over_time_and_space():
    torch.manual_seed(0)
    encoder = VideoEncoder(VideoEncoderConfig(**VIDEO_PRESETS["tiny"])).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    feature_map = encoder.blocks(encoder.stem(video.transpose(1, 2)))  # (B, C, T, h, w)
    torch.testing.assert_close(encoder(video), encoder.proj(feature_map.mean(dim=(2, 3, 4))))


def test_a_pool_grid_keeps_one_feature_vector_per_cell_of_the_crop():
    torch.manual_seed(0)
    encoder = VideoEncoder(VideoEncoderConfig(**VIDEO_PRESETS["tiny"], pool_grid=2)).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    feature_map = encoder.blocks(encoder.stem(video.transpose(1, 2))).mean(dim=2)  # (B, 64, 4, 4) at 32 px
    cells = torch.nn.functional.avg_pool2d(feature_map, 2)  # (B, 64, 2, 2): the crop's four quarters
    assert encoder.proj.in_features == 64 * 4
    torch.testing.assert_close(encoder(video), encoder.proj(cells.flatten(1)))
    moved = cells.flip(-1).flatten(1)  # the same quarters in other places: another feature
    assert not torch.allclose(encoder(video), encoder.proj(moved), atol=1e-4)
