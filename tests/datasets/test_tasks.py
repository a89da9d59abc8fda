"""datasets/tasks.py: one table says what each task generates, how it is scored and which checkpoint wins."""
import pytest

from datasets.formats import DataFormatError, LabelEntry
from datasets.sign_dataset import target_text
from datasets.tasks import TASK_NAMES, UnknownTaskError, get_task


def test_the_three_tasks_of_the_paper():
    assert TASK_NAMES == ("SLT", "CSLR", "ISLR")
    assert [get_task(name).selection_metric for name in TASK_NAMES] == ["bleu4", "wer", "top1_acc_pi"]


def test_targets_come_from_the_tasks_field():
    entry = LabelEntry("clip", "I go home.", gloss="I HOME GO")
    assert [target_text(entry, name) for name in TASK_NAMES] == ["I go home.", "I HOME GO", "I go home."]
    with pytest.raises(DataFormatError, match="sample 'clip': task CSLR needs a gloss"):
        target_text(LabelEntry("clip", "I go home."), "CSLR")


def test_the_best_checkpoint_is_the_larger_bleu_and_top1_but_the_smaller_wer():
    assert get_task("SLT").is_better({"bleu4": 10.0}, {"bleu4": 9.0})
    assert get_task("ISLR").is_better({"top1_acc_pi": 50.0}, {"top1_acc_pi": 49.0})
    assert get_task("CSLR").is_better({"wer": 30.0}, {"wer": 31.0})
    assert not get_task("CSLR").is_better({"wer": 31.0}, {"wer": 31.0})


def test_task_names_are_case_insensitive_and_unknown_ones_are_refused():
    assert get_task("slt") is get_task("SLT")
    with pytest.raises(UnknownTaskError, match="unknown task 'MT'; expected one of SLT, CSLR, ISLR"):
        get_task("MT")
