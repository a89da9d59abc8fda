"""Beam search through MKL-packed weights (models/packed_linear.py): the same products up to summation order,
packed only for a row count seen twice in a row, kept while the weights stay the same, never used under autograd
or autocast, and the model is given back unchanged."""
import pytest
import torch
from conftest import random_parts
from torch import nn

from models.packed_linear import PackedLinear, packed_linears, packing_available

pytestmark = pytest.mark.skipif(not packing_available(), reason="this torch build has no MKL packed GEMM")


def small_layers():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(48, 300), nn.ReLU(), nn.Linear(300, 48, bias=False))


def test_packed_products_equal_torchs_linear_up_to_summation_order():
    layers, packs = small_layers(), {}
    inputs = torch.randn(8, 1, 48)  # batch x beams rows, one new token
    with torch.no_grad():
        expected = layers(inputs)
        with packed_linears(layers, packs, min_elements=0):
            outputs = [layers(inputs) for _ in range(3)]
    assert {name: pack.rows for name, pack in packs.items()} == {"0": 8, "2": 8}
    for output in outputs:
        torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6)


def test_only_a_row_count_seen_twice_in_a_row_is_packed():
    packs = {}
    linear = PackedLinear(small_layers()[0], packs, "layer")
    with torch.no_grad():
        for rows in (8, 40, 8, 40):  # one-off products (cross-attention keys) are not worth a pack
            linear(torch.randn(rows, 48))
        assert packs == {}
        linear(torch.randn(40, 48))
        assert packs["layer"].rows == 40


def test_a_pack_serves_later_searches_until_its_weight_changes():
    layers, packs = small_layers(), {}
    inputs = torch.randn(8, 48)
    with torch.no_grad():
        with packed_linears(layers, packs, min_elements=0):
            layers(inputs), layers(inputs)
        first = packs["0"].packed
        with packed_linears(layers, packs, min_elements=0):
            layers(inputs)  # the first call of the next search already uses the pack
        assert packs["0"].packed is first
        layers[0].weight.add_(1.0)  # an optimizer step, a loaded state: in-place updates
        with packed_linears(layers, packs, min_elements=0):
            changed = [layers(inputs) for _ in range(2)][-1]
        assert packs["0"].packed is not first
    torch.testing.assert_close(changed, layers(inputs).detach(), rtol=1e-5, atol=1e-5)


def test_autograd_and_autocast_go_through_the_plain_linear():
    layers, packs = small_layers(), {}
    inputs = torch.randn(8, 48)
    with packed_linears(layers, packs, min_elements=0):
        for _ in range(2):
            output = layers(inputs)
        assert output.requires_grad and packs == {}
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for _ in range(2):
                assert layers(inputs).dtype == torch.bfloat16
        assert packs == {}


def test_leaving_gives_the_modules_back_even_after_an_error():
    layers = small_layers()
    keys = list(layers.state_dict())
    with pytest.raises(RuntimeError, match="stopped"), packed_linears(layers, {}, min_elements=0):
        assert isinstance(layers[0], PackedLinear)
        raise RuntimeError("stopped")
    assert [type(layer) for layer in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert list(layers.state_dict()) == keys
    with packed_linears(layers[0], {}, min_elements=0):  # a root cannot be swapped in place: it computes as it is
        assert layers(torch.randn(2, 48)).shape == (2, 48)


def test_small_weights_stay_unpacked_by_default():
    layers = nn.Sequential(nn.Linear(1024, 1024), nn.Linear(1024, 1023))  # 2^20 weights and just below
    with packed_linears(layers, {}):
        assert [type(layer) for layer in layers] == [PackedLinear, nn.Linear]


def test_beam_search_finds_the_same_texts_packed_or_not(tiny_model, monkeypatch):
    monkeypatch.setattr("models.packed_linear.MIN_PACKED_ELEMENTS", 0)  # the tiny LM's weights are all small
    tiny_model.eval()
    parts, mask = random_parts(3, 10)
    packed = tiny_model.generate(parts, mask, num_beams=4, max_new_tokens=8)
    assert {tiny_model.decoding_packs[name].rows for name in ("lm_head", "decoder.block.0.layer.2.DenseReluDense.wo")} \
        == {3 * 4}  # the decoder's and the LM head's products at batch x beams rows went through packs
    tiny_model.train()
    assert tiny_model.decoding_packs == {}  # training frees them

    tiny_model.eval()
    tiny_model.packed_decoding = False
    assert tiny_model.generate(parts, mask, num_beams=4, max_new_tokens=8) == packed
    assert tiny_model.decoding_packs == {}
