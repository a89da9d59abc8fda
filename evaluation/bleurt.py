"""Optional BLEURT for English SLT (paper Table 6 reports BLEURT-20, as mean score x 100).

Nothing is downloaded: the user points `--bleurt-checkpoint DIR` at a local checkpoint. Three kinds work:

* an original (TensorFlow) BLEURT checkpoint (has `bleurt_config.json`), scored with the `bleurt` package
  (google-research/bleurt, needs TensorFlow);
* a PyTorch port of BLEURT-20 (`config.json` with model_type "bleurt", e.g. lucadiliello/BLEURT-20), scored
  with the `bleurt-pytorch` package (`bleurt_pytorch`);
* a plain transformers sequence-regression checkpoint (`config.json` of another model type, e.g. the BERT-based
  ports of the older BLEURT-base/large checkpoints), scored with transformers alone.

When the checkpoint or its package is missing, `BleurtUnavailable` says what is missing and how to get it;
`eval.py` then prints that message and reports the other metrics without BLEURT.

    python -m evaluation.bleurt --checkpoint DIR --score test_pres.txt test_refs.txt   # prints {"bleurt": ...}
    python -m evaluation.bleurt --checkpoint DIR --run out/eval                        # adds bleurt to a run's JSONs
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

BLEURT_KEY = "bleurt"


class BleurtUnavailable(RuntimeError):
    """BLEURT cannot be computed here; the message says why and what to install or pass."""


def checkpoint_kind(checkpoint) -> str:
    """'tensorflow', 'bleurt_pytorch' or 'transformers', from the files in the checkpoint folder."""
    if checkpoint is None or str(checkpoint) == "":
        raise BleurtUnavailable("BLEURT not computed: no checkpoint given (pass --bleurt-checkpoint DIR, e.g. a "
                                "local copy of BLEURT-20 as in the paper)")
    path = Path(checkpoint)
    if not path.is_dir():
        raise BleurtUnavailable(f"BLEURT not computed: checkpoint folder {path} does not exist")
    if (path / "bleurt_config.json").is_file():
        return "tensorflow"
    config = path / "config.json"
    if config.is_file():
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type", "")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BleurtUnavailable(f"BLEURT not computed: {config} is not readable JSON ({error})") from error
        return "bleurt_pytorch" if "bleurt" in str(model_type).lower() else "transformers"
    raise BleurtUnavailable(f"BLEURT not computed: {path} holds neither bleurt_config.json (original BLEURT) "
                            "nor config.json (PyTorch port)")


def _require(module: str, hint: str, checkpoint) -> None:
    if importlib.util.find_spec(module) is None:
        raise BleurtUnavailable(f"BLEURT not computed: checkpoint {checkpoint} needs the Python package "
                                f"'{module}', which is not installed ({hint})")


def load_scorer(checkpoint, batch_size: int = 32, device=None) -> Callable[[Sequence[str], Sequence[str]], list]:
    """A function (references, candidates) -> per-pair BLEURT scores; BleurtUnavailable when it cannot be built."""
    kind = checkpoint_kind(checkpoint)
    if kind == "tensorflow":
        _require("bleurt", "the original BLEURT package from google-research/bleurt, with TensorFlow; or use a "
                 "PyTorch port of the checkpoint with bleurt-pytorch", checkpoint)
        from bleurt import score as bleurt_score  # noqa: PLC0415 (optional dependency)

        scorer = bleurt_score.BleurtScorer(str(checkpoint))
        return lambda refs, hyps: list(scorer.score(references=list(refs), candidates=list(hyps),
                                                    batch_size=batch_size))
    import torch

    if kind == "bleurt_pytorch":
        _require("bleurt_pytorch", "pip install bleurt-pytorch", checkpoint)
        from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer  # noqa: PLC0415

        model = BleurtForSequenceClassification.from_pretrained(str(checkpoint))
        tokenizer = BleurtTokenizer.from_pretrained(str(checkpoint))
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint))
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
        if model.config.num_labels != 1:
            raise BleurtUnavailable(f"BLEURT not computed: {checkpoint} is a classifier with "
                                    f"{model.config.num_labels} outputs, not a BLEURT regression head (1 output)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    max_length = min(512, getattr(tokenizer, "model_max_length", 512) or 512)

    @torch.no_grad()
    def score(refs, hyps):
        values = []
        for start in range(0, len(refs), batch_size):
            inputs = tokenizer(list(refs[start:start + batch_size]), list(hyps[start:start + batch_size]),
                               padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
            values += model(**inputs.to(device)).logits[:, 0].float().cpu().tolist()
        return values

    return score


def bleurt_score(hypotheses: Sequence[str], references: Sequence[str], checkpoint=None, batch_size: int = 32,
                 scorer=None) -> float:
    """Mean BLEURT over the pairs x 100 (the paper's scale, e.g. 60.40); BleurtUnavailable when it cannot run."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("BLEURT of an empty corpus is undefined")
    scorer = scorer or load_scorer(checkpoint, batch_size)
    scores = scorer(list(references), list(hypotheses))
    return 100.0 * sum(scores) / len(scores)


def bleurt_for_files(pred_file, ref_file, checkpoint=None, scorer=None) -> dict:
    """{'bleurt': value} for an official-format prediction/reference pair (BleurtUnavailable when it cannot run)."""
    from evaluation.prediction_files import pair_predictions

    _, hyps, refs = pair_predictions(pred_file, ref_file)
    return {BLEURT_KEY: bleurt_score(hyps, refs, checkpoint, scorer=scorer)}


def add_bleurt_to_run(run_dir, checkpoint, splits=("dev", "test")) -> dict:
    """Score `<split>_pres.txt`/`_refs.txt` of a run; add `bleurt` to `<split>_metrics.json` and results.json.

    Returns {split: bleurt} for the splits whose files exist; BleurtUnavailable (nothing written) when BLEURT
    cannot be computed.
    """
    run_dir = Path(run_dir)
    pairs = {split: (run_dir / f"{split}_pres.txt", run_dir / f"{split}_refs.txt") for split in splits}
    pairs = {split: files for split, files in pairs.items() if all(f.is_file() for f in files)}
    if not pairs:
        raise FileNotFoundError(f"{run_dir} holds no <split>_pres.txt / <split>_refs.txt pair for {list(splits)}")
    scorer = load_scorer(checkpoint)
    added = {split: bleurt_for_files(*files, scorer=scorer)[BLEURT_KEY] for split, files in pairs.items()}
    for split, value in added.items():
        _update_json(run_dir / f"{split}_metrics.json", lambda data, v=value: {**data, BLEURT_KEY: v})
    _update_json(run_dir / "results.json",
                 lambda data: {**data, **{s: {**data.get(s, {}), BLEURT_KEY: v} for s, v in added.items()}})
    return added


def _update_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    path.write_text(json.dumps(change(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="local BLEURT checkpoint folder (e.g. BLEURT-20)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--score", nargs=2, metavar=("PRED_FILE", "REF_FILE"))
    what.add_argument("--run", metavar="RUN_DIR", help="add BLEURT to the dev/test metrics of a run folder")
    args = parser.parse_args(argv)
    try:
        if args.score:
            result = bleurt_for_files(*args.score, args.checkpoint)
        else:
            result = add_bleurt_to_run(args.run, args.checkpoint)
    except BleurtUnavailable as error:
        sys.exit(str(error))
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
