"""Whole models in one call: `UniSign.from_pretrained(...)` and `model.save_pretrained(dir)`.

A saved model is a Hugging Face-style directory (what `huggingface_hub.snapshot_download` returns loads as is):

    config.json          {"model_type": "uni_sign", "uni_sign": UniSignConfig, "language_model": MT5Config,
                          "training": {task, dataset, max_length, num_beams, max_new_tokens[, rgb_sampling]}}
    model.safetensors    every weight (pose encoder, RGB branch, mT5), shared tensors stored once
    spiece.model, tokenizer_config.json, special_tokens_map.json    the tokenizer
    README.md            the model card (task, data, training command, metrics, intended use and limits)

`from_pretrained` also reads checkpoint files: our training checkpoints (`best_checkpoint.pth`: the model config
is inside; the language model's architecture and tokenizer come from `lm_path`) and official `.pth` files
(recognised by their key layout; the pose encoder's widths are read from the weight shapes and the prompt
language is `lang`, default Chinese as the official CSL-Daily models).
"""
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import MT5Config, MT5ForConditionalGeneration

from models.checkpoint_layout import alias_groups, convert_checkpoint, load_state_dict_into
from models.language_model import LanguageModelError, load_language_model, load_tokenizer
from utils.checkpoint import CheckpointError, load_checkpoint_file, replace_directory

MODEL_TYPE = "uni_sign"
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
INPUT_EMBEDDING_NAMES = {f"mt5_model.{name}.weight" for name in ("shared", "encoder.embed_tokens", "decoder.embed_tokens")}


@dataclass
class ModelCard:
    """What the generated README.md says about a saved model."""

    task: str = "SLT"
    dataset: str = ""
    training_command: str = ""
    metrics: dict = field(default_factory=dict)  # {split: {metric: value}}
    notes: str = ""
    max_length: int = 256  # frames the model was trained on (longer clips are sub-sampled to this)
    rgb_sampling: dict | None = None  # RGB-pose models: datasets/rgb.py RGBSampling of training
    decoding: dict = field(default_factory=dict)  # {num_beams, max_new_tokens} the run evaluated with

    def training_flags(self) -> dict:
        """What inference reads back (`load_pretrained`): the task, the clip length, the decoding the run was
        evaluated with and its RGB sampling."""
        flags = {"task": self.task, "dataset": self.dataset, "max_length": self.max_length, **self.decoding}
        return {**flags, "rgb_sampling": self.rgb_sampling} if self.rgb_sampling else flags


def save_pretrained(model, out_dir, card: ModelCard | None = None) -> Path:
    """Write `model` as a directory (see the module doc), atomically: a half-written directory never appears."""
    out_dir = Path(out_dir)
    building = out_dir.with_name(f"{out_dir.name}.saving-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        write_model_files(model, building, card or ModelCard())
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    replace_directory(building, out_dir)
    return out_dir


def write_model_files(model, directory, card):
    config = {"model_type": MODEL_TYPE, "uni_sign": model.config.to_dict(),
              "language_model": model.mt5_model.config.to_dict(), "training": card.training_flags()}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    save_file(unique_tensors(model.state_dict()), str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    model.tokenizer.save_pretrained(directory)
    vocab_file = getattr(model.tokenizer, "vocab_file", None)  # the SentencePiece model, for slow-tokenizer readers
    if vocab_file and Path(vocab_file).is_file():
        shutil.copyfile(vocab_file, directory / "spiece.model")
    (directory / CARD_FILE).write_text(model_card_text(model, card), encoding="utf-8")


def unique_tensors(state_dict) -> dict:
    """Each tensor once, under its first name (tied embeddings, the shared hand encoder); loading fills the other
    names again (`load_state_dict_into`). Unlike safetensors' `save_model`, this accepts parameters that are views
    into one larger buffer (DeepSpeed ZeRO's flattened parameters): `save_file` writes each view's own bytes."""
    aliases = {name for group in alias_groups(state_dict) for name in group[1:]}
    return {name: tensor.detach().cpu() for name, tensor in state_dict.items() if name not in aliases}


def load_pretrained(model_class, source, lm_path=None, device="cpu", dtype=None, lang=None):
    """(`model_class` (UniSign) in eval mode, the flags it was trained with: task, max_length, ... where recorded,
    else {}) from a saved directory, our checkpoint file or an official checkpoint file."""
    source = Path(source)
    if source.is_dir():
        config, state_dict, language_model, tokenizer, flags = _read_directory(source)
    elif source.is_file():
        config, state_dict, language_model, tokenizer, flags = _read_checkpoint_file(source, lm_path)
    else:
        raise FileNotFoundError(f"{source}: neither a saved model directory nor a checkpoint file")
    config = model_class.config_class.from_dict(config)
    config.lang = lang or config.lang
    if config.rgb is not None:
        config.rgb.backbone_weights = ""  # the backbone's weights are in the file; the ImageNet file may be absent
    model = model_class(config, language_model, tokenizer)
    load_state_dict_into(model, state_dict, source=str(source), official=False)
    return model.to(device=device, dtype=dtype).eval(), flags


def _read_directory(directory):
    """(UniSignConfig dict, state dict, empty language model, tokenizer, training flags) of a saved directory."""
    config_file = directory / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_FILE}; not a saved Uni-Sign model")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"{config_file}: model_type {config.get('model_type')!r}, expected {MODEL_TYPE!r} "
                              f"(a bare mT5 directory is a --lm-path, not a Uni-Sign model)")
    language_model = MT5ForConditionalGeneration(MT5Config.from_dict(config["language_model"]))
    state_dict = load_file(directory / WEIGHTS_FILE)
    if "mt5_model.lm_head.weight" in state_dict and state_dict.keys() & INPUT_EMBEDDING_NAMES:
        untie_lm_head(language_model)  # saved apart (tied copies are saved once); MT5Config ties whatever it says
    return config["uni_sign"], state_dict, language_model, load_tokenizer(directory), config.get("training", {})


def _read_checkpoint_file(path, lm_path):
    """The same from a checkpoint file (ours or official) and the LM directory it was trained with."""
    if lm_path is None:
        raise LanguageModelError(f"{path}: a checkpoint file holds no tokenizer or language-model config; pass "
                                 f"lm_path (the mT5 directory it was trained with), or load a saved directory")
    ours = convert_checkpoint(load_checkpoint_file(path), to="ours")  # official files: config from the shapes
    language_model, tokenizer = load_language_model(lm_path)
    return ours["config"], ours["model"], language_model, tokenizer, ours.get("args", {})


def untie_lm_head(language_model):
    language_model.lm_head.weight = torch.nn.Parameter(language_model.lm_head.weight.detach().clone())
    language_model.config.tie_word_embeddings = False


# ----------------------------------------------------------------------------- the model card


def model_card_text(model, card: ModelCard) -> str:
    language = "zh" if model.config.lang == "Chinese" else "en"
    rgb = "RGB-pose (pose encoder + EfficientNet-B0 hand branch with PGF fusion)" if model.config.rgb else "pose-only"
    parameters = sum(parameter.numel() for parameter in model.parameters())
    decoding = {"num_beams": model.config.num_beams, "max_new_tokens": model.config.max_new_tokens, **card.decoding}
    lines = ["---", "library_name: uni-sign", f"language: [{language}]",
             "tags: [sign-language, sign-language-translation, sign-language-recognition, uni-sign]", "---", "",
             f"# Uni-Sign {card.task} model" + (f" ({card.dataset})" if card.dataset else ""), "",
             f"- task: {card.task}; prompt: \"{model.prompt_text()}\"",
             f"- model: {rgb}; language model d_model {model.mt5_model.config.d_model}, vocabulary "
             f"{model.mt5_model.config.vocab_size}; {parameters / 1e6:.1f} M parameters",
             f"- decoding: beam {decoding['num_beams']}, at most {decoding['max_new_tokens']} new tokens", ""]
    if card.training_command:
        lines += ["## Training", "", "```bash", card.training_command, "```", ""]
    if card.metrics:
        lines += ["## Results", "", "| split | metric | value |", "|---|---|---|"]
        lines += [f"| {split} | {name} | {value:.2f} |" for split, values in card.metrics.items()
                  for name, value in values.items() if isinstance(value, (int, float)) and name not in ("n", "skipped")]
        lines.append("")
    lines += ["## Use", "", "```python", "from models.uni_sign import UniSign",
              "model = UniSign.from_pretrained(\"path/to/this/directory\")", "```", "",
              "Input: 133-point COCO-WholeBody keypoints per frame (`pose_extraction/extract.py` extracts them from a "
              "video; `inference.py` runs the whole path).", "",
              "## Intended use and limits", "",
              "Research on sign language understanding. The model knows only the signs, signers and recording "
              "conditions of its training data; it is not a replacement for a human interpreter and must not be "
              "used for decisions about people. Pose extraction errors (occluded hands, several people, unusual "
              "framing) degrade its output without warning.", ""]
    if card.notes:
        lines += [card.notes, ""]
    return "\n".join(lines)
