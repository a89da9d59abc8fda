"""A curated corpus trains with train.py stage 1 (`--dataset CSL_News --task SLT`).

TEST SCAFFOLDING: the real poses come from `--extract-poses` (the MediaPipe front-end in
pose_extraction/extract.py). This test does not depend on it: `write_stand_in_poses` writes deterministic,
random-but-plausible keypoints (one per clip frame, in [0, 1], confident scores) for every clip, so that
what is tested is the curated labels + layout going through the real loaders and training loop.
"""
import json

import numpy as np
from curation_cases import CROP, EXPECTED_CLIPS, broadcast_dir  # noqa: F401 (fixture)

import train
from curation.manifest import read_manifest
from curation.pipeline import main as curate_main
from datasets.check_data import check_dataset
from datasets.formats import write_pose_pkl


def write_stand_in_poses(out):
    """Test scaffolding: a pose file per curated clip, a still figure with a slowly moving jitter."""
    for record in read_manifest(out / "manifest.jsonl").values():
        for number, clip in enumerate(record["clips"]):
            rng = np.random.default_rng(number)
            base = rng.uniform(0.3, 0.7, size=(133, 2))
            motion = 0.02 * np.sin(np.linspace(0, np.pi, clip["frames"]))[:, None, None]
            keypoints = np.clip(base + motion + rng.normal(0, 0.005, (clip["frames"], 133, 2)), 0, 1)
            scores = rng.uniform(0.6, 1.0, size=(clip["frames"], 133))
            write_pose_pkl(out / "pose_format" / f"{clip['name']}.pkl", keypoints, scores)


def test_curated_corpus_trains_with_stage_1(broadcast_dir, tiny_lm_dir, tmp_path):
    out = tmp_path / "corpus"
    assert curate_main(["--videos", str(broadcast_dir / "videos"), "--subtitles", str(broadcast_dir / "subtitles"),
                        "--crop", CROP, "--out", str(out)]) == 0
    write_stand_in_poses(out)
    report = check_dataset(out / "CSL_News_Labels.json", out / "pose_format")
    assert report.clean, [issue.line() for issue in report.problems]
    assert report.samples == len(EXPECTED_CLIPS)

    results = train.main([
        "--dataset", "CSL_News", "--task", "SLT", "--labels-dir", str(out), "--pose-dir", str(out / "pose_format"),
        "--lm-path", str(tiny_lm_dir), "--pose-preset", "tiny", "--epochs", "1", "--batch-size", "2",
        "--gradient-accumulation-steps", "1", "--max-new-tokens", "5", "--num-beams", "1", "--max_length", "16",
        "--no-progress", "--output_dir", str(tmp_path / "stage1"),
    ])
    assert np.isfinite(results["dev"]["loss"]) and np.isfinite(results["test"]["loss"])
    assert (tmp_path / "stage1" / "best_checkpoint.pth").is_file()
    dev_refs = (tmp_path / "stage1" / "dev_refs.txt").read_text(encoding="utf-8")
    assert "news_b_0002" in dev_refs  # CSL_News carves the last clip (1 %, at least one) as dev
    assert json.loads((tmp_path / "stage1" / "args.json").read_text())["dataset"] == "CSL_News"
