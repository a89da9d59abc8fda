"""bench/compare_official.py: the project side runs (CI's smoke form, no timing assertions), the official side is
skipped with a message when no checkout is given, and the official modules never displace ours."""
import sys

from bench import compare_official
from bench.official_import import import_official


def test_without_an_official_checkout_it_skips_with_a_message(tmp_path, capsys):
    assert "skipped" in compare_official.main(["--work-dir", str(tmp_path), "--skip", "train,eval,preprocess"])
    assert "--official-repo" in capsys.readouterr().out


def test_project_side_smoke_run(tmp_path):
    results = compare_official.main([
        "--ours-only", "--work-dir", str(tmp_path), "--batch-size", "2", "--batches", "1", "--repeats", "1",
        "--warmup", "0", "--max-new-tokens", "2", "--recommended", "--arithmetic",
        "--json", str(tmp_path / "results.json"),
    ])
    assert results["training_step"]["table"]["ours"]["seconds"]["median"] > 0
    assert set(results["training_step"]["table"]) == {"ours", "ours bf16", "ours bf16 pruned"}
    assert results["evaluation_pass"]["table"]["ours"]["seconds"]["n"] == 1
    assert set(results["preprocessing"]["table"]) == {"ours", "ours, pose store"}
    assert (tmp_path / "results.json").is_file()
    training = results["arithmetic"]["training_step"]["ours"]
    assert training["gflop"] > 0 and training["floor_seconds"] < training["seconds"]  # no official side: no target
    assert "needed_seconds" not in training and set(results["arithmetic"]["evaluation_pass"]) == {"ours"}  # fp32


def test_official_modules_are_imported_beside_ours_and_ours_stay(tmp_path):
    """A stand-in checkout with the official module names: it sees the generated config and its own utils."""
    (tmp_path / "models.py").write_text("from config import mt5_path\nLM = mt5_path\n")
    (tmp_path / "utils.py").write_text("NAME = 'official utils'\n")
    (tmp_path / "datasets.py").write_text("import utils\nfrom config import pose_dirs\nUTILS = utils.NAME\n"
                                          "POSES = pose_dirs['CSL_Daily']\n")
    import models.uni_sign  # noqa: F401  (ours, loaded before)

    ours = sys.modules["models"]
    official = import_official(tmp_path, "/lm", "/poses")
    assert official.models.LM == "/lm"
    assert (official.datasets.UTILS, official.datasets.POSES) == ("official utils", "/poses")
    assert sys.modules["models"] is ours and "config" not in sys.modules
    assert str(tmp_path) not in sys.path


def test_the_reordered_side_decodes_through_transformers_cache_reorder_and_restores_ours(tmp_path, monkeypatch):
    from transformers.cache_utils import EncoderDecoderCache

    from models.beam_search_cache import BeamSearchCache

    ours, calls = BeamSearchCache.reorder_cache, []
    stock = EncoderDecoderCache.reorder_cache
    monkeypatch.setattr(EncoderDecoderCache, "reorder_cache", lambda *args: calls.append(1) or stock(*args))
    results = compare_official.main([
        "--ours-only", "--work-dir", str(tmp_path), "--batch-size", "2", "--batches", "1", "--repeats", "1",
        "--warmup", "0", "--max-new-tokens", "3", "--sides", "reordered", "--skip", "train,preprocess",
    ])
    assert set(results["evaluation_pass"]["table"]) == {"ours, cross cache re-ordered"}
    assert calls and BeamSearchCache.reorder_cache is ours
