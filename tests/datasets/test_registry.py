"""datasets/registry.py: where datasets live, and the official per-dataset language rules."""
from datasets.registry import get_dataset_spec
from datasets.synthetic import generate_corpus


def test_official_dataset_names_follow_the_official_prompt_and_scoring_rules(tmp_path):
    """The official code keys the prompt language and CSL-Daily's character-level scoring on the dataset name."""
    generate_corpus(tmp_path, size="tiny", lang="en")
    labels = tmp_path / "sentences"
    expected = {"CSL_Daily": ("Chinese", True), "CSL_News": ("Chinese", False), "How2Sign": ("English", False),
                "Synthetic": ("English", False)}
    for name, (lang, char_level) in expected.items():
        spec = get_dataset_spec(name, labels_dir=labels)
        assert (spec.prompt_language(), spec.char_level_scoring("SLT")) == (lang, char_level), name


def test_character_level_scoring_is_for_translation_only(tmp_path):
    generate_corpus(tmp_path, size="tiny", lang="zh")
    spec = get_dataset_spec("Synthetic", labels_dir=tmp_path / "sentences", lang="Chinese")
    assert spec.char_level_scoring("SLT") and not spec.char_level_scoring("CSLR")
    assert not spec.char_level_scoring("ISLR")
