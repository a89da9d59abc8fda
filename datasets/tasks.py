"""The three downstream tasks, declared once: what the model writes, how it is scored, which checkpoint wins.

Every module that behaves differently per task reads this table (`get_task(name)`) instead of comparing
task-name strings.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    target_field: str  # the LabelEntry field the model learns to generate: "text" or "gloss"
    scoring: str  # the metric family (evaluation/metrics): "translation", "wer" or "accuracy"
    selection_metric: str  # the dev metric that picks the best checkpoint
    larger_is_better: bool  # of selection_metric
    char_level_scoring: bool  # the official CSL-Daily character-level post-processing may apply
    head: str | None  # the paper's Table 7 task-specific head (models/task_heads.py): "ctc", "classification"

    def is_better(self, metrics: dict, best: dict) -> bool:
        """Whether dev `metrics` beat the `best` so far on this task's selection metric."""
        new, old = metrics[self.selection_metric], best[self.selection_metric]
        return new > old if self.larger_is_better else new < old


SLT = Task("SLT", "sign language translation: clip -> spoken-language sentence", "text", "translation", "bleu4",
           True, True, None)
CSLR = Task("CSLR", "continuous sign language recognition: clip -> gloss sequence", "gloss", "wer", "wer",
            False, False, "ctc")
ISLR = Task("ISLR", "isolated sign language recognition: clip -> one sign's word", "text", "accuracy",
            "top1_acc_pi", True, False, "classification")
TASKS = {task.name: task for task in (SLT, CSLR, ISLR)}
TASK_NAMES = tuple(TASKS)


class UnknownTaskError(ValueError):
    """A task name that is not in TASKS."""


def get_task(name) -> Task:
    """The Task called `name` (case-insensitive), or a Task given as is."""
    if isinstance(name, Task):
        return name
    task = TASKS.get(str(name).upper())
    if task is None:
        raise UnknownTaskError(f"unknown task {name!r}; expected one of {', '.join(TASK_NAMES)}")
    return task
