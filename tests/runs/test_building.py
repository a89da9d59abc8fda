"""runs/building.py: what a run builds from its flags (model, data) beyond train.py's own tests."""
from models.vocabulary import corpus_token_ids
from runs.building import warn_unknown_target_tokens


def test_a_pruned_model_warns_when_new_targets_fall_outside_its_vocabulary(tiny_model, capsys):
    tiny_model.prune_vocabulary(corpus_token_ids(tiny_model.tokenizer, ["hello world", tiny_model.prompt_text()]))
    warn_unknown_target_tokens(tiny_model, ["hello world", "hello"])
    assert capsys.readouterr().err == ""
    warn_unknown_target_tokens(tiny_model, ["hello store", "tomorrow"])
    assert "target tokens of the training split are outside the pruned vocabulary" in capsys.readouterr().err
