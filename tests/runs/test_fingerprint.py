"""A training state records the settings, model and data of its run; --resume names what differs."""
from runs.fingerprint import fingerprint_differences, run_fingerprint

SETTINGS = {"lr": 1e-3, "seed": 42, "batch_size": 4, "output_dir": "out/a", "num_workers": 0, "num_beams": 4}
MODEL = {"lang": "English", "label_smoothing": 0.2, "num_beams": 4, "pose": {"proj_dim": 32, "parts": ["body"]}}


def fingerprint(tmp_path, settings=None, model=None, text="a\n"):
    (tmp_path / "labels.train").write_text(text)
    return run_fingerprint({**SETTINGS, **(settings or {})}, {**MODEL, **(model or {})},
                           {"Synthetic/train": tmp_path / "labels.train"})


def test_the_same_run_has_no_differences(tmp_path):
    assert fingerprint_differences(fingerprint(tmp_path), fingerprint(tmp_path)) == []


def test_output_workers_and_decoding_settings_may_change(tmp_path):
    changed = fingerprint(tmp_path, {"output_dir": "out/b", "num_workers": 4, "num_beams": 1}, {"num_beams": 1})
    assert fingerprint_differences(fingerprint(tmp_path), changed) == []


def test_each_difference_is_named_with_both_values(tmp_path):
    saved = fingerprint(tmp_path)
    now = fingerprint(tmp_path, {"lr": 3e-4, "seed": 0}, {"pose": {"proj_dim": 64, "parts": ["body"]}}, text="b\n")
    differences = fingerprint_differences(saved, now)
    assert "lr: 0.001 in the state, 0.0003 now" in differences
    assert "seed: 42 in the state, 0 now" in differences
    assert "model.pose.proj_dim: 32 in the state, 64 now" in differences
    assert any(line.startswith("data.Synthetic/train: ") for line in differences)
    assert len(differences) == 4


def test_a_state_older_than_a_setting_counts_as_made_with_the_kernel_it_used(tmp_path):
    """States written before --fused-adamw existed were updated by torch's default AdamW ('off')."""
    older = fingerprint(tmp_path)
    assert fingerprint_differences(older, fingerprint(tmp_path, {"fused_adamw": "off"})) == []
    assert fingerprint_differences(older, fingerprint(tmp_path, {"fused_adamw": "on"})) == [
        "fused_adamw: 'off' in the state, 'on' now"]
