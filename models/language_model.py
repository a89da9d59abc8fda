"""Language model loading: any local MT5/T5 directory, or the embedded default built on the spot.

mT5-Base (the paper's decoder) is a directory the user brings (`pretrained_weight/mt5-base` by
official convention). A fresh machine has none, so the embedded default trains a SentencePiece
model on the corpus texts, builds a small MT5 config, and saves both with `save_pretrained`; it is
then loaded back through exactly the same `from_pretrained` path as mT5-Base.
"""
import contextlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

DEFAULT_LM_PATH = "pretrained_weight/mt5-base"
PROMPT_TEMPLATE = "Translate sign language video to {lang}: "


class LanguageModelError(FileNotFoundError):
    """--lm-path is not a loadable MT5/T5 directory; the message names it and what is wrong."""


@dataclass
class EmbeddedLMConfig:
    """Size of the small LM built for the embedded default (mT5-Base: 768/12/12/2048, vocab 250112)."""

    vocab_size: int = 1000
    d_model: int = 256
    d_kv: int = 32
    d_ff: int = 512
    num_layers: int = 2
    num_decoder_layers: int = 2
    num_heads: int = 4
    dropout_rate: float = 0.1


class _UntiedHeadWarning(logging.Filter):
    """transformers 5 warns on every load that MT5's tied-weights mapping is not applied when the saved lm_head
    differs from the embedding, even though the config says tie_word_embeddings: false (mT5-Base and the
    embedded LM are untied on purpose); that warning is dropped, every other one kept."""

    def filter(self, record) -> bool:
        return "tied weights mapping" not in record.getMessage()


@contextlib.contextmanager
def _quiet_untied_head(untied):
    logger, quiet = logging.getLogger("transformers.modeling_utils"), _UntiedHeadWarning()
    if untied:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def load_language_model(lm_path):
    """Load (MT5ForConditionalGeneration in float32, T5Tokenizer) from a local directory."""
    lm_path = Path(lm_path)
    if not (lm_path / "config.json").is_file():
        raise LanguageModelError(
            f"language model directory '{lm_path}' not found (no config.json). Put a local mT5 copy there "
            f"(e.g. google/mt5-base downloaded on another machine) and pass --lm-path DIR, or build the "
            f"embedded default with `python -m models.language_model --texts FILE --out DIR`."
        )
    try:
        untied = json.loads((lm_path / "config.json").read_text(encoding="utf-8")).get("tie_word_embeddings") is False
        with _quiet_untied_head(untied):
            model = MT5ForConditionalGeneration.from_pretrained(lm_path, dtype=torch.float32)
        tokenizer = load_tokenizer(lm_path)
    except Exception as error:  # noqa: BLE001 (safetensors, sentencepiece and config errors: all the directory's fault)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LanguageModelError(f"--lm-path {lm_path}: not a loadable MT5/T5 directory ({first_line})") from error
    return model, tokenizer


def load_tokenizer(directory) -> T5Tokenizer:
    """The SentencePiece tokenizer saved in `directory`, decoding as the official code did.

    Official decoding (transformers 4.40) cleans up tokenization spaces (" ." -> ".", " n't" -> "n't") unless the
    tokenizer config says otherwise; transformers 5.x defaults to no clean-up. The official default is restored."""
    directory = Path(directory)
    tokenizer = T5Tokenizer.from_pretrained(directory, legacy=False)
    config_file = directory / "tokenizer_config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    tokenizer.clean_up_tokenization_spaces = saved.get("clean_up_tokenization_spaces", True)
    return tokenizer


def train_sentencepiece(texts, out_dir, vocab_size) -> Path:
    """Train a unigram SentencePiece model with T5's special ids (pad 0, eos 1, unk 2)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        handle.write("\n".join(texts) + "\n")
    spm.SentencePieceTrainer.train(
        input=handle.name,
        model_prefix=str(out_dir / "spiece"),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    Path(handle.name).unlink()
    return out_dir / "spiece.model"


def build_embedded_lm(texts, out_dir, config: EmbeddedLMConfig = EmbeddedLMConfig(), seed=0) -> Path:
    """Build the embedded default LM from corpus texts and save it as a Hugging Face directory.

    The prompts are added to the SentencePiece training text so that they tokenise without <unk>.
    """
    out_dir = Path(out_dir)
    prompts = [PROMPT_TEMPLATE.format(lang=lang) for lang in ("English", "Chinese")]
    train_sentencepiece(list(texts) + prompts * 10, out_dir, config.vocab_size)
    tokenizer = T5Tokenizer.from_pretrained(out_dir, legacy=False, extra_ids=0)
    mt5_config = MT5Config(
        **{**asdict(config), "vocab_size": len(tokenizer)},
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    torch.manual_seed(seed)
    model = MT5ForConditionalGeneration(mt5_config)
    # mT5-Base has an untied lm_head; MT5Config always ties, a distinct saved lm_head stays untied on load.
    # Scaled by d_model^-0.5 so that an untrained model starts with unit-scale logits.
    lm_head = torch.randn_like(model.shared.weight) * config.d_model ** -0.5
    model.lm_head.weight = torch.nn.Parameter(lm_head)
    model.config.tie_word_embeddings = False
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "embedded_lm.json").write_text(json.dumps(asdict(config), indent=2))
    return out_dir


def main():
    import argparse

    parser = argparse.ArgumentParser(description="Build the embedded default language model from a text file.")
    parser.add_argument("--texts", required=True, help="UTF-8 file, one training sentence per line")
    parser.add_argument("--out", required=True, help="output directory (a Hugging Face MT5 directory)")
    parser.add_argument("--vocab-size", type=int, default=EmbeddedLMConfig.vocab_size)
    parser.add_argument("--d-model", type=int, default=EmbeddedLMConfig.d_model)
    args = parser.parse_args()
    texts = [line for line in Path(args.texts).read_text(encoding="utf-8").splitlines() if line.strip()]
    config = EmbeddedLMConfig(vocab_size=args.vocab_size, d_model=args.d_model)
    print(build_embedded_lm(texts, args.out, config))


if __name__ == "__main__":
    main()
