"""Checkpoints: the official layout (same weights -> same outputs), safe loading, atomic saving."""
import json
import random
import re

import pytest
import torch
from conftest import SHARED_DIR, random_parts

from models.checkpoint_layout import (alias_groups, cast_floating, from_official_key, load_model_weights,
                                      load_state_dict_into, to_official_key)
from models.pose_encoder import PoseEncoderConfig
from models.uni_sign import UniSign, UniSignConfig
from utils import checkpoint as ckpt
from utils.checkpoint import FORMAT, CheckpointError, atomic_save, load_checkpoint_file
from models.export_checkpoint import main as export_main

LISTING = SHARED_DIR / "spec" / "official_state_dict.txt"
TINY_POSE = dict(proj_dim=8, spatial_widths=(8, 16, 16))
# The listing's tiny MT5 (official_state_dict.txt header).
LISTING_MT5 = dict(vocab_size=453, d_model=768, d_kv=64, d_ff=256, num_layers=1, num_decoder_layers=1, num_heads=4)
VOCAB_KEYS = ("mt5_model.shared.weight", "mt5_model.encoder.embed_tokens.weight",
              "mt5_model.decoder.embed_tokens.weight", "mt5_model.lm_head.weight")


# ----------------------------------------------------------------------------- helpers and fixtures


def parse_listing(section):
    """{official key: (shape, dtype, alias target or None)} of one section ('False' / 'True' = rgb_support)."""
    if not LISTING.is_file():
        pytest.skip("../shared/spec/official_state_dict.txt is not present")
    text = LISTING.read_text(encoding="utf-8").split("## rgb_support = ")[1:]
    body = {part.split("\n", 1)[0].strip(): part for part in text}[section]
    entries = {}
    for line in body.splitlines():
        match = re.match(r"^(\S+)  \(([\d, ]*)\)  (\w+)  (\S+)(?:  \[same tensor as (\S+)\])?$", line)
        if match:
            shape = tuple(int(x) for x in match.group(2).replace(" ", "").split(",") if x)
            entries[match.group(1)] = (shape, getattr(torch, match.group(3)), match.group(5))
    return entries


def make_model(lm_dir, seed=0, pose=None, lang="English") -> UniSign:
    torch.manual_seed(seed)
    config = UniSignConfig(lang=lang, pose=PoseEncoderConfig(**(TINY_POSE if pose is None else pose)))
    return UniSign.from_lm_path(config, lm_dir)


def randomize(model, seed=1):
    """Give every tensor (parameters and BatchNorm statistics) distinct, non-default values, in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=generator) * 0.2 + 0.9
                            if value.ndim == 1 else torch.randn(value.shape, generator=generator) * 0.05)
            else:
                value.fill_(int(torch.randint(1, 100, (), generator=generator)))
    return model


def our_checkpoint(model, path):
    atomic_save({"format": FORMAT, "model": model.state_dict(), "config": model.config.to_dict()}, path)
    return path


def export(source, target, *extra):
    export_main([str(source), str(target), *extra])
    return target


def outputs(model, seed=3):
    model.eval()
    parts, mask = random_parts(2, 7, seed=seed)
    mask[1, 5:] = 0
    labels = model.tokenize_targets(["hello world", "go"])
    return model(parts, mask, labels).loss, model.generate(parts, mask, max_new_tokens=6)


@pytest.fixture(scope="module")
def lm768_dir(tmp_path_factory):
    """An LM with the listing's shapes (d_model 768, so pose_proj is (768, 1024); vocabulary 453)."""
    from models.language_model import EmbeddedLMConfig, build_embedded_lm

    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ten", "sur", "pa", "qui", "ve", "do", "rex", "zu", "bin", "tor", "gal", "fe",
                 "nu", "os", "ha", "wy", "jo"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    texts = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(2000)]
    config = EmbeddedLMConfig(**{key: LISTING_MT5[key] for key in ("vocab_size", "d_model", "d_kv", "d_ff",
                                                                     "num_layers", "num_decoder_layers", "num_heads")})
    return build_embedded_lm(texts, tmp_path_factory.mktemp("lm768"), config)


def hand_built_official_state_dict(dtype=torch.float32):
    """An official-layout state dict built from the listing alone: pose keys and shapes parsed from
    official_state_dict.txt (aliases are one tensor), mT5 keys from a tiny MT5 with the listing's shapes."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    listing = parse_listing("False")
    generator = torch.Generator().manual_seed(7)
    state_dict = {}
    for key, (shape, listed_dtype, alias) in listing.items():
        if key.startswith("mt5_model."):
            continue
        if alias is not None:
            state_dict[key] = state_dict[alias]
        elif listed_dtype.is_floating_point:
            state_dict[key] = (torch.randn(shape, generator=generator) * 0.05).to(dtype)
        else:
            state_dict[key] = torch.randint(1, 50, shape, generator=generator, dtype=listed_dtype)
    torch.manual_seed(11)
    mt5 = MT5ForConditionalGeneration(MT5Config(**LISTING_MT5, decoder_start_token_id=0, pad_token_id=0,
                                                eos_token_id=1))
    mt5.lm_head.weight = torch.nn.Parameter(torch.randn_like(mt5.shared.weight) * 0.03)  # mT5-Base: untied
    for key, value in mt5.state_dict().items():
        state_dict[f"mt5_model.{key}"] = value
    state_dict = cast_floating(state_dict, dtype)
    for key, (shape, _, _) in listing.items():
        assert tuple(state_dict[key].shape) == shape, key
    assert set(state_dict) == set(listing)
    return state_dict


# ----------------------------------------------------------------------------- the official layout


def test_every_listed_official_key_maps_to_ours_and_back():
    for section in ("False", "True"):
        for key in parse_listing(section):
            ours = from_official_key(key)
            assert to_official_key(ours) == key
            if key.startswith(("rgb_support_backbone.", "rgb_proj.", "fusion_pose_rgb_", "fusion_gate.")):
                assert ours.startswith("pose_encoder.hand_fusion.")
            elif not key.startswith("mt5_model."):
                assert ours.startswith("pose_encoder.") and "hand_fusion" not in ours


@pytest.mark.parametrize("rgb", [False, True], ids=["pose_only", "rgb"])
def test_exported_keys_and_shapes_equal_the_official_listing(lm768_dir, tmp_path, rgb):
    """Same architecture -> the exported state dict has exactly the official keys, shapes, dtypes and aliases."""
    listing = parse_listing(str(rgb))
    model = make_model(lm768_dir, pose={})  # official widths
    if rgb:
        from models.hand_fusion import HandRGBFusion, RGBConfig

        model.pose_encoder.hand_fusion = HandRGBFusion(RGBConfig(), model.config.pose.hidden_dim)
    exported = export(our_checkpoint(model, tmp_path / "ours.pth"), tmp_path / "official.pth")
    checkpoint = torch.load(exported, weights_only=True)
    assert set(checkpoint) == {"model"}
    state_dict = checkpoint["model"]
    assert set(state_dict) == set(listing)
    vocabulary = len(model.tokenizer)
    for key, (shape, dtype, alias) in listing.items():
        expected = (vocabulary, shape[1]) if key in VOCAB_KEYS else shape
        assert tuple(state_dict[key].shape) == expected, key
        assert state_dict[key].dtype == dtype, key
        if alias is not None:  # saved once, aliased again on load, as official
            assert state_dict[key].data_ptr() == state_dict[alias].data_ptr(), key
    assert len(alias_groups(state_dict)) == len(alias_groups(model.state_dict()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hand_built_official_state_dict_loads_with_no_missing_or_unexpected_keys(lm768_dir, tmp_path, dtype):
    state_dict = hand_built_official_state_dict(dtype)
    path = tmp_path / "official.pth"
    torch.save({"model": state_dict}, path)
    model = make_model(lm768_dir, pose={})
    report = load_model_weights(model, path)
    assert report["layout"] == "official"
    assert report["missing"] == [] and report["unexpected"] == [] and report["filled_aliases"] == []
    if dtype == torch.bfloat16:
        assert report["cast"] == {"bfloat16 -> float32": sum(v.is_floating_point() for v in state_dict.values())}
    loaded = model.state_dict()
    for key, value in state_dict.items():
        ours = loaded[from_official_key(key)]
        assert ours.dtype == (torch.float32 if value.is_floating_point() else value.dtype)
        assert torch.equal(ours, value.to(ours.dtype)), key
    # The shared hand encoder and the tied embedding stay one tensor each.
    assert model.pose_encoder.gcn_modules["left"] is model.pose_encoder.gcn_modules["right"]
    assert model.mt5_model.encoder.embed_tokens.weight is model.mt5_model.shared.weight
    assert model.mt5_model.lm_head.weight is not model.mt5_model.shared.weight


def test_round_trip_ours_official_ours_is_exact(tiny_lm_dir, tmp_path):
    model = randomize(make_model(tiny_lm_dir, seed=0))
    reference = outputs(model)
    ours = our_checkpoint(model, tmp_path / "ours.pth")
    official = export(ours, tmp_path / "official.pth")
    back = export(official, tmp_path / "back.pth", "--to", "ours")

    official_state = load_checkpoint_file(official)["model"]
    assert set(official_state) == {to_official_key(key) for key in model.state_dict()}
    back_checkpoint = load_checkpoint_file(back)
    assert back_checkpoint["format"] == FORMAT
    assert UniSignConfig.from_dict(back_checkpoint["config"]).pose == model.config.pose
    original = model.state_dict()
    assert set(back_checkpoint["model"]) == set(original)
    for key, value in original.items():
        assert torch.equal(back_checkpoint["model"][key], value), key

    for path in (back, official):  # both layouts load into a differently initialised model
        fresh = make_model(tiny_lm_dir, seed=5)
        report = load_model_weights(fresh, path)
        assert report["missing"] == report["unexpected"] == []
        for key, value in fresh.state_dict().items():
            assert torch.equal(value, original[key]), key
        loss, texts = outputs(fresh)
        assert torch.equal(loss, reference[0]) and texts == reference[1]


def test_bfloat16_export_matches_official_saving(tiny_lm_dir, tmp_path):
    model = randomize(make_model(tiny_lm_dir))
    exported = export(our_checkpoint(model, tmp_path / "ours.pth"), tmp_path / "official.pth", "--dtype", "bfloat16")
    state_dict = load_checkpoint_file(exported)["model"]
    assert {value.dtype for value in state_dict.values()} == {torch.bfloat16, torch.int64}
    assert state_dict["proj_linear.right.weight"].data_ptr() == state_dict["proj_linear.left.weight"].data_ptr()
    fresh = make_model(tiny_lm_dir, seed=4)
    load_model_weights(fresh, exported)
    torch.testing.assert_close(fresh.pose_encoder.part_para, model.pose_encoder.part_para, rtol=1e-2, atol=0)


# ----------------------------------------------------------------------------- refusing what cannot fit


@pytest.fixture
def official_state(tiny_lm_dir, tmp_path):
    model = randomize(make_model(tiny_lm_dir))
    return load_checkpoint_file(export(our_checkpoint(model, tmp_path / "o.pth"), tmp_path / "off.pth"))["model"]


def _untie(state_dict, key):
    """A copy of the state dict whose `key` is a separate, different tensor."""
    state_dict = dict(state_dict)
    state_dict[key] = state_dict[key].clone() + 0.5
    return state_dict


@pytest.mark.parametrize("key, twin", [
    ("proj_linear.right.weight", "proj_linear.left.weight"),
    ("fusion_gcn_modules.right.layer0_1.tcn.1.running_var", "fusion_gcn_modules.left.layer0_1.tcn.1.running_var"),
    ("mt5_model.decoder.embed_tokens.weight", "mt5_model.shared.weight"),
])
def test_differing_copies_of_one_tensor_are_refused(tiny_lm_dir, official_state, key, twin):
    with pytest.raises(CheckpointError) as error:
        load_state_dict_into(make_model(tiny_lm_dir), _untie(official_state, key), source="ckpt")
    assert f"'{key}'" in str(error.value) and f"'{twin}'" in str(error.value)


def test_missing_alias_copies_are_filled_from_the_other_hand(tiny_lm_dir, official_state):
    model = make_model(tiny_lm_dir, seed=9)
    left_only = {key: value for key, value in official_state.items() if ".right." not in key}
    report = load_state_dict_into(model, left_only)
    assert report["missing"] == [] and len(report["filled_aliases"]) == len(official_state) - len(left_only)
    assert torch.equal(model.pose_encoder.proj_linear["right"].weight, official_state["proj_linear.right.weight"])


def test_shape_mismatch_error_names_the_official_key(tiny_lm_dir, official_state):
    broken = dict(official_state, **{"pose_proj.weight": torch.zeros(3, 4)})
    with pytest.raises(CheckpointError, match=r"'pose_proj\.weight' has shape \(3, 4\)"):
        load_state_dict_into(make_model(tiny_lm_dir), broken)
    # An official checkpoint into a model built with other widths: the first differing key is named.
    with pytest.raises(CheckpointError, match=r"'proj_linear\.body\.weight' has shape"):
        load_state_dict_into(make_model(tiny_lm_dir, pose=dict(proj_dim=4, spatial_widths=(8, 16, 16))),
                             official_state)


def test_shape_mismatch_in_our_layout_names_our_key(tiny_lm_dir, tmp_path):
    model = make_model(tiny_lm_dir)
    state = dict(model.state_dict(), **{"pose_encoder.part_para": torch.zeros(5)})
    with pytest.raises(CheckpointError, match=r"'pose_encoder\.part_para' has shape \(5,\)"):
        load_state_dict_into(make_model(tiny_lm_dir), state)


def test_missing_and_unexpected_keys_fail_unless_partial(tiny_lm_dir, official_state):
    state = {key: value for key, value in official_state.items() if key != "part_para"}
    state["fusion_gate.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_state_dict_into(make_model(tiny_lm_dir), state)
    message = str(error.value)
    assert "1 missing keys [part_para]" in message and "1 unexpected keys [fusion_gate.0.weight]" in message
    assert "--rgb_support" in message  # the hint: the extra key belongs to the RGB branch

    model = make_model(tiny_lm_dir, seed=8)
    before = model.pose_encoder.part_para.detach().clone()
    report = load_state_dict_into(model, state, partial=True)
    assert report["missing"] == ["pose_encoder.part_para"]
    assert report["unexpected"] == ["pose_encoder.hand_fusion.gate.0.weight"]
    assert torch.equal(model.pose_encoder.part_para, before)  # kept its own value
    assert torch.equal(model.pose_encoder.pose_proj.weight, official_state["pose_proj.weight"])


def test_module_prefix_is_stripped(tiny_lm_dir, official_state, tmp_path):
    path = tmp_path / "ds.pth"
    torch.save({"model": {f"module.{key}": value for key, value in official_state.items()}}, path)
    assert load_model_weights(make_model(tiny_lm_dir), path)["missing"] == []


# ----------------------------------------------------------------------------- safe loading, atomic saving


CALLS = []


def _record(*arguments):
    CALLS.append(arguments)
    return arguments


class _Gadget:
    """Unpickles as a call of `_record`: stands in for code a malicious checkpoint would run."""

    def __reduce__(self):
        return _record, ("ran",)


class _Custom:
    def __init__(self):
        self.value = 1


@pytest.mark.parametrize("payload, named", [(_Gadget(), "_record"), (_Custom(), "_Custom")],
                         ids=["callable", "class_instance"])
def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path, payload, named):
    path = tmp_path / "unsafe.pth"
    torch.save({"model": {"part_para": torch.zeros(3)}, "extra": payload}, path)
    CALLS.clear()
    with pytest.raises(CheckpointError, match="refused: the checkpoint needs arbitrary unpickling") as error:
        load_checkpoint_file(path)
    assert str(path) in str(error.value) and named in str(error.value)  # names the refused global
    assert CALLS == []  # nothing ran


def test_unreadable_checkpoints_give_clear_errors(tmp_path):
    truncated = tmp_path / "truncated.pth"
    torch.save({"model": {"a": torch.zeros(100)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint_file(truncated)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint_file(tmp_path / "absent.pth")
    no_model = tmp_path / "no_model.pth"
    torch.save({"state_dict": {}}, no_model)
    with pytest.raises(CheckpointError, match="expected a dict with a 'model' state dict"):
        load_checkpoint_file(no_model)


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl_c"])
def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, interruption):
    path = tmp_path / "checkpoint.pth"
    atomic_save({"model": {"w": torch.ones(4)}}, path)
    real_save = torch.save

    def failing_save(obj, stream, *args, **kwargs):
        stream.write(b"PK\x03\x04 partial bytes")  # something reached the disk before the failure
        raise interruption

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises(type(interruption)):
        atomic_save({"model": {"w": torch.zeros(4)}}, path)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert torch.equal(load_checkpoint_file(path)["model"]["w"], torch.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]  # no temporary file left


def test_export_refuses_unsafe_input_and_warns_for_non_official_architecture(tiny_lm_dir, tmp_path, capsys):
    path = tmp_path / "unsafe.pth"
    torch.save({"model": {}, "extra": _Custom()}, path)
    with pytest.raises(SystemExit, match="arbitrary unpickling"):
        export_main([str(path), str(tmp_path / "out.pth")])
    assert not (tmp_path / "out.pth").exists()
    export(our_checkpoint(make_model(tiny_lm_dir), tmp_path / "ours.pth"), tmp_path / "official.pth")
    assert "not the official architecture" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end


def test_official_export_round_trip_evaluates_identically(tiny_lm_dir, tmp_path):
    """eval.py --finetune OFFICIAL.pth (no config inside: the model comes from the flags) writes the official
    files, and gives exactly what our checkpoint of the same weights gives."""
    import eval as eval_script
    from datasets.synthetic import generate_corpus
    from models.pose_encoder import POSE_PRESETS

    corpus = tmp_path / "corpus"
    generate_corpus(corpus, size="tiny")
    model = randomize(make_model(tiny_lm_dir, pose=POSE_PRESETS["tiny"]))
    ours = our_checkpoint(model, tmp_path / "ours.pth")
    official = export(ours, tmp_path / "official.pth")
    assert "config" not in torch.load(official, weights_only=True)

    results = {}
    for name, path in (("official", official), ("ours", ours)):
        out = tmp_path / f"eval_{name}"
        eval_script.main([
            "--dataset", "Synthetic", "--task", "SLT", "--finetune", str(path), "--lm-path", str(tiny_lm_dir),
            "--labels-dir", str(corpus / "sentences"), "--pose-dir", str(corpus / "sentences" / "pose_format"),
            "--pose-preset", "tiny", "--batch-size", "4", "--max-new-tokens", "6", "--output_dir", str(out),
            "--no-progress",
        ])
        for split in ("dev", "test"):
            lines = (out / f"{split}_pres.txt").read_text(encoding="utf-8").splitlines()
            assert len(lines) == 8 and all(line.startswith("sample: ") for line in lines)
            metrics = json.loads((out / f"{split}_metrics.json").read_text())
            assert metrics["loss"] > 0
            results[name, split] = (lines, metrics["loss"])
    for split in ("dev", "test"):
        assert results["official", split] == results["ours", split]

    # A model built with other widths than the checkpoint's is refused, naming the official key.
    with pytest.raises(SystemExit, match=r"^error: .*official\.pth: 'part_para' has shape \(256,\).*widths 32 -> "
                                         r"\[32, 64, 64\]"):
        eval_script.main(["--dataset", "Synthetic", "--finetune", str(official), "--lm-path", str(tiny_lm_dir),
                          "--labels-dir", str(corpus / "sentences"), "--pose-preset", "official",
                          "--output_dir", str(tmp_path / "never")])


def test_decoding_cleans_up_tokenization_spaces_as_the_official_transformers(tiny_lm_dir, tmp_path):
    """transformers 4.40 (official pin) decodes with clean-up ("store ." -> "store."); 5.x does not by default."""
    import shutil

    from models.language_model import load_language_model

    _, tokenizer = load_language_model(tiny_lm_dir)
    ids = tokenizer(["store ."]).input_ids
    assert tokenizer.decode(ids[0], skip_special_tokens=True, clean_up_tokenization_spaces=False) == "store ."
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == ["store."]
    # A tokenizer config that says otherwise is honoured, as 4.40 does.
    copy = shutil.copytree(tiny_lm_dir, tmp_path / "lm")
    config = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps({**config, "clean_up_tokenization_spaces": False}))
    assert load_language_model(copy)[1].batch_decode(ids, skip_special_tokens=True) == ["store ."]


# ----------------------------------------------------------------------------- integrity


def test_saved_checkpoints_carry_a_checksum_of_their_tensors(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)},
             "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}}, "epoch": 3}
    atomic_save(state, tmp_path / "a.pth")
    loaded = load_checkpoint_file(tmp_path / "a.pth")
    assert loaded[ckpt.CHECKSUM_KEY] == ckpt.tensor_checksum(state)
    changed = {**state, "optimizer": {"state": {0: {"exp_avg": torch.tensor([1.0, 1.5])}}}}
    assert ckpt.tensor_checksum(changed) != ckpt.tensor_checksum(state)  # optimizer tensors count too
    renamed = {**state, "model": {"w2": state["model"]["w"], "b": state["model"]["b"]}}
    assert ckpt.tensor_checksum(renamed) != ckpt.tensor_checksum(state)  # and their names


def test_flipped_bytes_inside_a_tensor_are_refused(tmp_path):
    weight = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    atomic_save({"model": {"weight": weight}}, tmp_path / "a.pth")
    data = bytearray((tmp_path / "a.pth").read_bytes())
    offset = data.find(weight.numpy().tobytes()[:256])
    data[offset + 100:offset + 164] = bytes(b ^ 0xFF for b in data[offset + 100:offset + 164])
    (tmp_path / "a.pth").write_bytes(bytes(data))
    assert torch.load(tmp_path / "a.pth", weights_only=True)["model"]["weight"].shape == (64, 64)  # torch would load it
    with pytest.raises(CheckpointError, match=r"a\.pth: corrupt: its tensors no longer match the checksum"):
        load_checkpoint_file(tmp_path / "a.pth")


def test_files_without_a_checksum_still_load(tmp_path):
    torch.save({"model": {"weight": torch.ones(2)}}, tmp_path / "official.pth")
    assert torch.equal(load_checkpoint_file(tmp_path / "official.pth")["model"]["weight"], torch.ones(2))


def test_nonfinite_weights_are_refused_naming_the_tensor(tiny_model):
    state = tiny_model.state_dict()
    state["pose_encoder.pose_proj.weight"] = state["pose_encoder.pose_proj.weight"].clone()
    state["pose_encoder.pose_proj.weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"tensor 'pose_encoder.pose_proj.weight' holds NaN/inf values \(1 "):
        load_state_dict_into(tiny_model, state, source="nan.pth")
