"""runs/building.py: what a run builds from its flags (model, data) beyond train.py's own tests."""
from conftest import train_argv

from models.vocabulary import corpus_token_ids
from runs.arguments import get_args_parser
from runs.building import build_model, dataset_specs, warn_unknown_target_tokens


def test_a_pruned_model_warns_when_new_targets_fall_outside_its_vocabulary(tiny_model, capsys):
    tiny_model.prune_vocabulary(corpus_token_ids(tiny_model.tokenizer, ["hello world", tiny_model.prompt_text()]))
    warn_unknown_target_tokens(tiny_model, ["hello world", "hello"])
    assert capsys.readouterr().err == ""
    warn_unknown_target_tokens(tiny_model, ["hello store", "tomorrow"])
    assert "target tokens of the training split are outside the pruned vocabulary" in capsys.readouterr().err


def built_model(argv):
    args = get_args_parser().parse_args(argv)
    return build_model(args, dataset_specs(args)[0])


def test_the_compute_settings_of_the_flags_reach_the_model(sentence_corpus, tiny_lm_dir):
    argv = train_argv(sentence_corpus, tiny_lm_dir, "unused", "--loss-chunk-tokens", "16")
    model = built_model(argv)
    assert (model.loss_chunk_tokens, model.packed_decoding) == (16, True)  # beam search through packed weights
    assert built_model(argv + ["--packed-decoding", "off"]).packed_decoding is False
