"""CCL-SLR run helpers (runs/ccl.py): flags, retrieval and classifier scoring, benchmark subsets."""
import pytest
import torch

from models.task_heads import Vocabulary
from runs.ccl import ccl_config, modalities_of, ranked_classes, subset_scores, top1_retrieval
from runs.ccl_arguments import get_ccl_args_parser
from runs.errors import UsageError


def parse(*argv):
    return get_ccl_args_parser().parse_args(list(argv))


def test_modalities_come_in_a_fixed_order_and_unknown_ones_are_refused():
    assert modalities_of(parse("--modalities", "rgb,pose")) == ("pose", "rgb")
    assert modalities_of(parse("--modalities", "pose")) == ("pose",)
    with pytest.raises(UsageError, match="--modalities"):
        modalities_of(parse("--modalities", "depth"))


def test_the_rgb_branch_pools_into_a_3_by_3_grid_unless_told_otherwise():
    assert ccl_config(parse(), steps_per_epoch=10).video_config().pool_grid == 3
    assert ccl_config(parse("--video-pool-grid", "1"), steps_per_epoch=10).video_config().pool_grid == 1


def test_retrieval_counts_rows_whose_best_match_is_their_own():
    queries = torch.eye(3)
    assert top1_retrieval(queries, queries) == pytest.approx(100.0)
    assert top1_retrieval(queries, queries[[1, 0, 2]]) == pytest.approx(100 / 3)  # only row 2 finds its own


def test_subsets_rank_only_their_own_classes():
    vocab = Vocabulary(["apple", "book", "cat"])  # indices 0, 1, 2
    logits = torch.tensor([[2.0, 5.0, 1.0],  # apple clip: best overall 'book', best of {apple, cat} 'apple'
                           [9.0, 0.0, 1.0]])  # cat clip: best overall 'apple'
    assert ranked_classes(logits, vocab)[0][0] == "book"
    scores = subset_scores(logits, ["apple", "cat"], vocab, {"S2": ["apple", "cat"], "S1": ["Apple"]})
    assert scores["S2"]["n"] == 2 and scores["S2"]["top1_acc_pi"] == 50.0  # the cat clip ranks apple first
    assert scores["S1"]["n"] == 1 and scores["S1"]["top1_acc_pi"] == 100.0  # one class: always right
    assert subset_scores(logits, ["apple", "cat"], vocab, {"none": ["dog"]}) == {"none": {"n": 0}}
