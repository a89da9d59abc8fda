"""docs/python_api.md: every ```python snippet runs, in order, on a quickstart-shaped folder.

The folder holds what `python script/quickstart.py` leaves behind, built small: the tiny test model saved as
stage3_slt/best (+ its checkpoint file) and stage3_islr/best, the tiny LM as embedded_lm, the tiny synthetic
corpus as data/.
"""
import re
import shutil
from pathlib import Path

import pytest
import torch

from datasets.synthetic import generate_corpus
from models.pretrained import ModelCard
from models.uni_sign import UniSign
from utils.checkpoint import FORMAT, atomic_save

DOC = Path(__file__).resolve().parents[2] / "docs" / "python_api.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def quickstart_folder(tiny_model, tiny_lm_dir, tmp_path, monkeypatch):
    out = tmp_path / "out" / "quickstart"
    generate_corpus(out / "data", seed=0, size="tiny")
    shutil.copytree(tiny_lm_dir, out / "embedded_lm")
    tiny_model.eval().save_pretrained(out / "stage3_slt" / "best", ModelCard(task="SLT", max_length=64))
    atomic_save({"format": FORMAT, "model": tiny_model.state_dict(), "config": tiny_model.config.to_dict()},
                out / "stage3_slt" / "best_checkpoint.pth")
    tiny_model.save_pretrained(out / "stage3_islr" / "best", ModelCard(task="ISLR", max_length=64))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_snippet(index, capsys) -> str:
    code = snippets()[index]
    exec(compile(code, f"{DOC.name} snippet {index + 1}", "exec"), {"__name__": "__doc_snippet__"})
    return capsys.readouterr().out


def test_the_document_has_its_four_examples():
    assert len(snippets()) == 4


def test_load_a_model_in_one_line(quickstart_folder, tiny_model, capsys):
    printed = run_snippet(0, capsys)
    assert printed.split()[0] == "English"
    saved = UniSign.from_pretrained(quickstart_folder / "my_model")
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[key], value, rtol=0, atol=0)
    assert (quickstart_folder / "my_model" / "README.md").is_file()


def test_translate_a_pose_file(quickstart_folder, capsys):
    printed = run_snippet(1, capsys).splitlines()
    assert printed[0].split()[-1].isdigit()  # "<text> <frames>"
    assert printed[1].startswith("[(")  # three (text, score) candidates


def test_score_candidate_texts(quickstart_folder, capsys):
    printed = run_snippet(2, capsys).splitlines()
    probabilities = [float(line.split(": ")[1]) for line in printed[:3]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    assert "tensor" in printed[3]  # the (1, 5) summed log-likelihoods


def test_fine_tune_from_python(quickstart_folder, tiny_model, capsys):
    printed = run_snippet(3, capsys).splitlines()
    assert [line.split(":")[0] for line in printed] == ["epoch 0", "epoch 1"]
    tuned = UniSign.from_pretrained(quickstart_folder / "my_finetuned_model")
    tuned_parameters = dict(tuned.named_parameters())
    changed = [name for name, value in tiny_model.named_parameters() if not torch.equal(tuned_parameters[name], value)]
    assert changed, "fine-tuning changed no weight"
