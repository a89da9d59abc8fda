"""utils/plot_curves.py: PNGs from RunLogger CSVs, metric lookup, resume duplicates, clear errors."""
import math

import numpy as np
import pytest

from utils.logger import RunLogger
from utils.plot_curves import CurveError, ema, load_run, main, plot_curves, read_log


def write_run(run_dir, steps=60, epochs=3, lr=1e-3, dev_metric="bleu4", scale=1.0):
    log = RunLogger(run_dir, tensorboard=False)
    for step in range(1, steps + 1):
        log.scalars("train", step, loss=scale * (3.0 * math.exp(-step / 20) + 0.1 * math.sin(step)),
                    lr=lr * 0.5 * (1 + math.cos(math.pi * step / steps)))
    for epoch in range(epochs):
        log.scalars("epoch", epoch, train_loss=2.0 - 0.3 * epoch, samples_per_s=40.0 + epoch,
                    **{f"dev_{dev_metric}": 10.0 + 5 * epoch, "dev_loss": 2.5 - 0.2 * epoch})
    log.close()
    return run_dir


def assert_nontrivial_png(path, min_bytes=10_000):
    import matplotlib.image

    assert path.is_file() and path.stat().st_size > min_bytes
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50  # lines, text: many colours


def test_two_runs_default_metrics(tmp_path):
    a = write_run(tmp_path / "run_a")
    b = write_run(tmp_path / "run_b", lr=3e-4, scale=1.2)
    out = plot_curves([a, b], tmp_path / "curves.png", smooth=0.9)
    assert_nontrivial_png(out)


def test_cli_with_metrics_and_labels(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", dev_metric="wer")
    out = tmp_path / "sub" / "c.png"
    main([str(a), str(b), "--out", str(out), "--metrics", "loss,lr,dev_bleu4,dev_wer,epoch:samples_per_s",
          "--labels", "first,second", "--title", "two runs"])
    assert_nontrivial_png(out)
    err = capsys.readouterr().err
    assert "has no column 'dev_wer'" in err and "has no column 'dev_bleu4'" in err


def test_single_metric_single_run(tmp_path):
    out = plot_curves([write_run(tmp_path / "r")], tmp_path / "one.png", metrics=["dev_bleu4"])
    assert_nontrivial_png(out, min_bytes=5_000)


def test_only_train_log_is_enough_for_step_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_log.csv").write_text("step,loss,lr\n1,2.0,0.001\n2,1.5,0.001\n3,1.2,0.0009\n")
    assert_nontrivial_png(plot_curves([run], tmp_path / "p.png"), min_bytes=5_000)


def test_resumed_run_duplicate_steps_last_row_wins(tmp_path):
    path = tmp_path / "train_log.csv"
    path.write_text("step,loss,lr\n1,3.0,0.1\n2,2.0,0.1\n3,9.0,0.1\n2,2.5,0.1\n3,1.0,\n")
    columns = read_log(path)
    assert columns["loss"] == ([1.0, 2.0, 3.0], [3.0, 2.5, 1.0])
    assert columns["lr"] == ([1.0, 2.0], [0.1, 0.1])  # empty cells are skipped


def test_ema_is_debiased():
    assert ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    assert ema([1.0, 3.0], 0.0) == [1.0, 3.0]


def test_missing_run_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        plot_curves([tmp_path / "nope"], tmp_path / "x.png")


def test_run_without_logs_names_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train_log.csv"):
        load_run(tmp_path / "empty")


def test_missing_epoch_log_named_when_needed(tmp_path):
    good = write_run(tmp_path / "good")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train_log.csv").write_text("step,loss,lr\n1,2.0,0.001\n")
    with pytest.raises(FileNotFoundError, match=r"partial[/\\]epoch_log\.csv.*dev_bleu4"):
        plot_curves([good, partial], tmp_path / "x.png", metrics=["loss", "dev_bleu4"])


def test_cli_error_is_a_clear_exit(tmp_path):
    with pytest.raises(SystemExit, match="plot_curves: .*missing_run"):
        main([str(tmp_path / "missing_run"), "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_unknown_metric_lists_available(tmp_path):
    run = write_run(tmp_path / "r")
    with pytest.raises(CurveError, match="train:loss"):
        plot_curves([run], tmp_path / "x.png", metrics=["bleu"])


def test_malformed_csv_names_file_and_line(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "train_log.csv").write_text("step,loss\n1,2.0\nabc,1.0\n")
    with pytest.raises(CurveError, match=r"train_log\.csv, line 3"):
        plot_curves([run], tmp_path / "x.png")
    (run / "train_log.csv").write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(CurveError, match="first column must be 'step'"):
        plot_curves([run], tmp_path / "x.png")


def test_bad_arguments(tmp_path):
    run = write_run(tmp_path / "r")
    with pytest.raises(CurveError, match="smooth"):
        plot_curves([run], tmp_path / "x.png", smooth=1.0)
    with pytest.raises(CurveError, match="labels"):
        plot_curves([run], tmp_path / "x.png", labels=["a", "b"])
