"""bench/train_throughput.py, bench/padding.py and bench/hand_batchnorm.py: smoke runs on the tiny corpus and the tiny test LM."""
import pytest

from bench import padding, train_throughput


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from datasets.synthetic import generate_corpus

    out = tmp_path_factory.mktemp("corpus") / "synthetic"
    generate_corpus(out, size="tiny")
    return out


def test_one_preset_in_process(tiny_corpus, tiny_lm_dir):
    args = train_throughput.parse_args(["--data", str(tiny_corpus), "--lm-path", str(tiny_lm_dir), "--warmup", "1",
                                        "--steps", "2", "--distinct-batches", "2", "--batch-size", "4",
                                        "--device", "cpu", "--threads", "1", "--peak-tflops", "1.0"])
    result = train_throughput.run_preset(args, "tiny", tiny_corpus, tiny_lm_dir)
    assert result["samples_per_s"] > 0 and result["target_tokens_per_s"] > 0 and result["frames_per_s"] > 0
    assert result["peak_mib"] > 50
    assert result["counted_flops_per_step"] > result["lm_6nd_flops_per_step"] > 0  # counted includes the pose encoder
    assert 0 < result["mfu"] < 1
    assert result["params"]["total"] > result["params"]["pose_encoder"] > 0
    table = train_throughput.format_table([result])
    assert "| tiny |" in table


def test_bf16_autocast_path_runs_on_cpu(tiny_corpus, tiny_lm_dir):
    args = train_throughput.parse_args(["--data", str(tiny_corpus), "--lm-path", str(tiny_lm_dir), "--warmup", "0",
                                        "--steps", "1", "--distinct-batches", "1", "--batch-size", "2",
                                        "--device", "cpu", "--dtype", "bf16", "--no-flops", "--threads", "1"])
    result = train_throughput.run_preset(args, "tiny", tiny_corpus, tiny_lm_dir)
    assert result["dtype"] == "bf16" and "mfu" not in result and "counted_flops_per_step" not in result


def test_passthrough_drops_parent_flags():
    argv = ["--pose-preset", "tiny,official", "--steps", "5", "--json=out.json", "--data", "d", "--threads", "1"]
    assert train_throughput._passthrough(argv) == ["--steps", "5", "--threads", "1"]


def test_padding_bench_on_the_tiny_corpus(tiny_corpus, tmp_path):
    rows = padding.main(["--data", str(tiny_corpus), "--batch-sizes", "4", "--epochs", "2",
                         "--csl-daily-labels", str(tmp_path / "absent"), "--json", str(tmp_path / "p.json")])
    names = {row["name"] for row in rows}
    assert any(name.startswith("synthetic news") for name in names)
    assert any("log-normal" in name for name in names)
    for row in rows:
        assert row["result"]["grouped"]["fraction"] <= row["result"]["random"]["fraction"]
    assert (tmp_path / "p.json").is_file()


def test_hand_batchnorm_probe_reports_both_hand_modes(tiny_corpus, capsys):
    from bench import hand_batchnorm

    hand_batchnorm.main(["--data", str(tiny_corpus), "--epochs", "1", "--batch-size", "8"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| separate") or
            line.startswith("| one batch")]
    assert len(rows) == 2
    for row in rows:
        train_mode, eval_mode, test_eval = (float(cell) for cell in row.strip("|").split("|")[1:4])
        assert all(0.0 <= value <= 100.0 for value in (train_mode, eval_mode, test_eval))
