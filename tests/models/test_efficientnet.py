import re

import pytest
import torch

from models.efficientnet import efficientnet_b0_features, load_torchvision_weights


def official_entries(shared_dir, prefix):
    """{key without prefix: shape} from the rgb_support = True listing of official_state_dict.txt."""
    text = (shared_dir / "spec" / "official_state_dict.txt").read_text()
    rgb_part = text.split("## rgb_support = True", 1)[1]
    entries = {}
    for key, shape in re.findall(r"^(\S+)\s+\(([\d, ]*)\)", rgb_part, flags=re.M):
        if key.startswith(prefix):
            entries[key[len(prefix):]] = tuple(int(s) for s in shape.replace(" ", "").split(",") if s)
    return entries


@pytest.fixture(scope="module")
def features():
    torch.manual_seed(0)
    return efficientnet_b0_features().eval()


def test_state_dict_matches_official_listing(shared_dir, features):
    expected = official_entries(shared_dir, "rgb_support_backbone.0.")
    assert len(expected) == 358
    ours = {k: tuple(v.shape) for k, v in features.state_dict().items()}
    assert ours == expected
    assert list(ours) == list(expected)  # same order too


def test_output_shape_for_112_crops(features):
    with torch.no_grad():
        out = features(torch.randn(2, 3, 112, 112))
    assert out.shape == (2, 1280, 4, 4)


def test_parameter_count_and_bn_defaults(features):
    # torchvision efficientnet_b0: 5,288,548 parameters, of which 1,281,000 in the classifier
    assert sum(p.numel() for p in features.parameters()) == 5_288_548 - 1_281_000
    bns = [m for m in features.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.eps == 1e-5 and bn.momentum == 0.1 for bn in bns)


def test_stochastic_depth_only_in_training():
    torch.manual_seed(0)
    net = efficientnet_b0_features(stochastic_depth_prob=0.9)
    x = torch.randn(4, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    probs = [m.stochastic_depth.p for stage in list(net)[1:8] for m in stage]
    assert probs[0] == 0.0 and probs[-1] == pytest.approx(0.9 * 15 / 16)


def test_load_torchvision_weights_roundtrip(tmp_path, features):
    torch.manual_seed(1)
    source = efficientnet_b0_features()
    state = {f"features.{k}": v for k, v in source.state_dict().items()}
    state["classifier.1.weight"], state["classifier.1.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)
    path = tmp_path / "efficientnet_b0_rwightman.pth"
    torch.save(state, path)
    target = efficientnet_b0_features()
    load_torchvision_weights(target, path)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)


def test_load_torchvision_weights_errors(tmp_path):
    net = efficientnet_b0_features()
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_torchvision_weights(net, tmp_path / "nowhere.pth")
    torch.save({"classifier.1.bias": torch.zeros(1000)}, tmp_path / "nofeat.pth")
    with pytest.raises(ValueError, match="no 'features"):
        load_torchvision_weights(net, tmp_path / "nofeat.pth")
    state = {f"features.{k}": v for k, v in net.state_dict().items()}
    del state["features.8.1.weight"]
    state["features.0.0.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"missing 8\.1\.weight.*shape mismatch 0\.0\.weight"):
        load_torchvision_weights(net, tmp_path / "broken.pth")


def test_same_output_as_torchvision():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(2)
    reference = torchvision.models.efficientnet_b0().features
    ours = efficientnet_b0_features()
    # perturb BN statistics so eval-mode normalisation is exercised, then share all weights
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-5)
    torch.manual_seed(3)
    ours.train()(x).sum().backward()  # training mode (stochastic depth active) runs too
