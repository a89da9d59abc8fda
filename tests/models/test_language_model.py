"""Loading the language model directory: quiet for untied heads, one clear error for a broken directory."""
import logging
import shutil

import pytest

from models.language_model import LanguageModelError, load_language_model


def test_an_untied_lm_head_loads_without_the_tied_weights_warning(tiny_lm_dir, caplog):
    with caplog.at_level(logging.WARNING):
        model, _ = load_language_model(tiny_lm_dir)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()  # still untied
    assert not [record for record in caplog.records if "tied weights mapping" in record.getMessage()]
    assert not logging.getLogger("transformers.modeling_utils").filters  # the filter is gone after loading


@pytest.mark.parametrize("broken", ["config.json", "model.safetensors", "tokenizer.json"])
def test_a_broken_directory_is_one_error_naming_it(tiny_lm_dir, tmp_path, broken):
    copy = tmp_path / "lm"
    shutil.copytree(tiny_lm_dir, copy)
    (copy / broken).write_bytes(b"not what it should be")
    with pytest.raises(LanguageModelError, match=rf"--lm-path {copy}: not a loadable MT5/T5 directory"):
        load_language_model(copy)


def test_a_missing_directory_says_how_to_get_one(tmp_path):
    with pytest.raises(LanguageModelError, match="not found \\(no config.json\\).*--lm-path DIR"):
        load_language_model(tmp_path / "mt5-base")
