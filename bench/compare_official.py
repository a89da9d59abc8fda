"""Side by side with the official Uni-Sign code: training step, evaluation pass, preprocessing, peak memory.

    pip install --no-deps --target .bench-site torchvision==0.28.0     # the official code imports torchvision
    PYTHONPATH=.bench-site python -m bench.compare_official --official-repo ../Uni-Sign
    PYTHONPATH=.bench-site python -m bench.compare_official --official-repo ../Uni-Sign --scale mt5-base \
        --batch-size 2 --repeats 3
    python -m bench.compare_official --ours-only             # the project side alone (CI's smoke run)

Both models are built in this process from the same language-model directory and hold the same weights (the
official state dict is loaded into ours); every measurement alternates official / ours on the same batches,
one torch thread (--threads), and reports the median CPU seconds with the spread (min - max) and the ratio
official / ours (> 1: we are faster). It checks the outputs on the way: the training losses (relative
difference), the evaluation losses and the beam-search texts (the official ids decoded
by our tokenizer).

- training step: forward, backward, grad-norm clip 1.0, AdamW step, zero_grad. Official: `Uni_Sign.forward`
  (it tokenises prompt and targets itself); ours: `UniSign.forward` + engine.PlainStepper, as train.py runs it.
  Dropout is seeded identically before each pair of steps. Peak memory: the rise of the peak resident set
  over the step (VmHWM reset before each step).
- evaluation pass: official: forward (loss) then generate, as its `evaluate`; ours: what engine.evaluate runs.
- preprocessing: one training sample from its pose file, official `S2T_Dataset.__getitem__` vs our SignDataset,
  reading the pose files, and reading our preprocessed store (datasets/pose_store.py, built by the benchmark).
- recommended options (--recommended): ours again with bf16 autocast on the CPU, and with bf16 + a vocabulary pruned
  to 1/8 (--pruned-vocabulary N; the corpus' tokens topped up to a realistic size); not official numerics.
- arithmetic (--arithmetic): each fp32 side's counted GFLOP per step against this CPU's fp32 GEMM peak: the rate
  reached, the floor, and the rate a x1.5 over the official side would need (bench/arithmetic.py).

--scale fixture: the official pose encoder with a small mT5 of width 768 (2 + 2 layers, the official pose
projection is hard-coded to 768); --scale mt5-base: mT5-Base dimensions (12 + 12 layers, d_ff 2048,
vocabulary 250,112) with random weights. Data: the tiny synthetic corpus (CSL-Daily layout), generated.
See docs/performance.md for the figures, the machine and how torchvision is made importable on a CPU machine.
"""
import argparse
import copy
import ctypes
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.arithmetic import counted_gflop, describe, floor_report, gemm_peak_gflops  # noqa: E402
from bench.official_import import OfficialCodeMissing, import_official, preload_torchvision  # noqa: E402

preload_torchvision()  # before transformers is imported (see bench/official_import.py)

import torch  # noqa: E402
from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer  # noqa: E402
from transformers.cache_utils import EncoderDecoderCache  # noqa: E402

from bench.train_throughput import current_rss_mib, peak_memory_mib, reset_peak_memory  # noqa: E402
from datasets.formats import read_labels  # noqa: E402
from datasets.pose_store import PoseStore, build_store  # noqa: E402
from datasets.sign_dataset import SignDataset, collate_samples  # noqa: E402
from datasets.synthetic import generate_corpus  # noqa: E402
from engine import PlainStepper, build_optimizer, build_scheduler  # noqa: E402
from models.beam_search_cache import BeamSearchCache  # noqa: E402
from models.checkpoint_layout import load_state_dict_into  # noqa: E402
from models.language_model import EmbeddedLMConfig, build_embedded_lm, train_sentencepiece  # noqa: E402
from models.pose_encoder import PoseEncoderConfig  # noqa: E402
from models.uni_sign import UniSign, UniSignConfig  # noqa: E402
from models.vocabulary import corpus_token_ids  # noqa: E402

FIXTURE_LM = EmbeddedLMConfig(vocab_size=1000, d_model=768, d_kv=64, d_ff=1024, num_layers=2, num_decoder_layers=2,
                              num_heads=12)
MT5_BASE = dict(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12,
                vocab_size=250112, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
DATASET = "CSL_Daily"  # the official code's dataset name for the sentence layout (prompt in Chinese)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", default=None, help="a checkout of github.com/ZechengLi19/Uni-Sign")
    parser.add_argument("--ours-only", action="store_true", help="run the project side alone (no official code)")
    parser.add_argument("--scale", default="fixture", choices=["fixture", "mt5-base"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=3, help="distinct batches, cycled")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side and measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per side first")
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--recommended", action="store_true",
                        help="also time ours with bf16 autocast, and with bf16 + a pruned vocabulary")
    parser.add_argument("--sides", default="",
                        help="comma-separated sides of ours to time: ours, bf16, pruned, lean (fp32 with the chunked "
                             "loss), unpacked (fp32, beam search without packed weights: --packed-decoding off), "
                             "reordered (fp32, beam search re-ordering its cross-attention cache as transformers does) "
                             "(default: ours, and with --recommended ours, bf16, pruned); at mT5-Base scale keep "
                             "the sides that fit in memory")
    parser.add_argument("--pruned-vocabulary", type=int, default=0,
                        help="tokens the pruned side keeps (default: 1/8 of the language model's vocabulary)")
    parser.add_argument("--arithmetic", action="store_true",
                        help="also count each step's FLOPs and set them against this CPU's fp32 GEMM peak: the rate "
                             "reached, the floor, and the rate a x1.5 over the official side would need")
    parser.add_argument("--skip", default="", help="comma-separated: train,eval,preprocess")
    parser.add_argument("--work-dir", default=None, help="corpus and LM are built here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- setup


def build_corpus(work_dir) -> Path:
    data_dir = work_dir / "data"
    if not (data_dir / "corpus.json").is_file():
        generate_corpus(data_dir, seed=0, size="tiny")
    return data_dir / "sentences"


def build_lm(work_dir, scale, texts) -> Path:
    lm_dir = work_dir / f"lm-{scale}"
    if (lm_dir / "config.json").is_file():
        return lm_dir
    if scale == "fixture":
        return build_embedded_lm(texts, lm_dir, FIXTURE_LM)
    train_sentencepiece(texts + ["Translate sign language video to Chinese: "] * 10, lm_dir, 1000)
    tokenizer = T5Tokenizer.from_pretrained(lm_dir, legacy=False, extra_ids=0)
    torch.manual_seed(0)
    config = MT5Config(**MT5_BASE, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    MT5ForConditionalGeneration(config).save_pretrained(lm_dir)
    tokenizer.save_pretrained(lm_dir)
    return lm_dir


def official_args(max_length=256):
    return SimpleNamespace(hidden_dim=256, dataset=DATASET, rgb_support=False, label_smoothing=0.2,
                           max_length=max_length, task="SLT")


def build_models(official, lm_dir):
    """(official Uni_Sign, our UniSign) holding the same weights."""
    torch.manual_seed(0)
    theirs = official.models.Uni_Sign(official_args()) if official else None
    ours = UniSign.from_lm_path(UniSignConfig(lang="Chinese", pose=PoseEncoderConfig()), lm_dir)
    if theirs is not None:
        load_state_dict_into(ours, theirs.state_dict(), official=True)
    return theirs, ours


def build_datasets(official, sentences, pose_store=None):
    labels = sentences / "labels.train"
    ours = SignDataset(read_labels(labels), sentences / "pose_format", "SLT", 256, seed=0, pose_store=pose_store)
    theirs = official.datasets.S2T_Dataset(str(labels), official_args(), "train") if official else None
    return theirs, ours


def official_batch(dataset, indices):
    """The official collate of these samples, coordinates cast to float32 (the official code casts to its engine
    dtype only under bf16; in fp32 its float64 coordinates would not pass its float32 Linear)."""
    src_input, tgt_input = dataset.collate_fn([dataset[i] for i in indices])
    for part in ("body", "left", "right", "face_all"):
        src_input[part] = src_input[part].float()
    return src_input, tgt_input


def batch_plan(num_samples, batch_size, batches):
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(0)).tolist()
    return [[order[(k * batch_size + i) % num_samples] for i in range(batch_size)] for k in range(batches)]


# ----------------------------------------------------------------------------- the two sides


class Side:
    """One implementation under test: a name, callables for a training step and an evaluation pass, and the
    precision it computes in (fp32, or bf16 under autocast)."""

    def __init__(self, name, train_step, eval_pass, precision="fp32"):
        self.name, self.train_step, self.eval_pass, self.precision = name, train_step, eval_pass, precision


def official_side(model, batches, beams, max_new_tokens, decode):
    optimizer = build_optimizer(model, 3e-4, fused=False)  # the official AdamW: timm's create_optimizer, torch default

    def train_step(k):
        src_input, tgt_input = batches[k]
        loss = model(src_input, tgt_input)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def eval_pass(k):
        src_input, tgt_input = batches[k]
        with torch.no_grad():
            stack_out = model(src_input, tgt_input)
            ids = model.generate(stack_out, max_new_tokens=max_new_tokens, num_beams=beams)
        return stack_out["loss"].item(), decode(ids)

    return Side("official", train_step, eval_pass)


@contextmanager
def cross_attention_cache_reordered():
    """Beam search re-ordering its cross-attention cache at every step, as transformers' own cache does (the
    'reordered' side: what models/beam_search_cache.py saves)."""
    ours = BeamSearchCache.reorder_cache
    BeamSearchCache.reorder_cache = EncoderDecoderCache.reorder_cache
    try:
        yield
    finally:
        BeamSearchCache.reorder_cache = ours


def our_side(model, batches, beams, max_new_tokens, name="ours", autocast=None, decoding=nullcontext):
    optimizer = build_optimizer(model, 3e-4)
    stepper = PlainStepper(model, optimizer, build_scheduler(optimizer, 1, 10 ** 6, 1), 1, 1.0)
    precision = (lambda: torch.autocast("cpu", dtype=autocast)) if autocast else nullcontext

    def train_step(k):
        batch = batches[k]
        with precision():
            loss = model(batch["parts"], batch["frame_mask"], batch["labels"]).loss
        stepper.backward(loss)
        stepper.step()
        return loss.item()

    def eval_pass(k):
        batch = batches[k]
        with precision(), decoding():
            output, texts = model.evaluate_batch(batch["parts"], batch["frame_mask"], batch["labels"],
                                                 num_beams=beams, max_new_tokens=max_new_tokens)
        return output.loss.item(), texts

    return Side(name, train_step, eval_pass, "bf16" if autocast else "fp32")


# ----------------------------------------------------------------------------- timing


def release_free_memory():
    """Hand freed heap pages back to the OS (glibc), so that the next peak counts what a step really allocates
    rather than what an earlier step left in the allocator's free lists."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def timed(function, *args):
    """(result, CPU seconds of this process)."""
    started = time.process_time()
    result = function(*args)
    return result, time.process_time() - started


def peak_rise_mib(function, *args) -> float:
    """How far one call lifts the peak resident set above the resident set before it (MiB)."""
    release_free_memory()
    method = reset_peak_memory(torch.device("cpu"))
    before = current_rss_mib() or 0.0
    function(*args)
    return peak_memory_mib(torch.device("cpu"), method)["peak_mib"] - before


def summary(values) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def interleave(sides, measure, args, seeded):
    """Alternate the sides step by step, then one more step each for the peak memory (the memory is handed back
    to the OS before it, which costs page faults that the timed steps must not pay);
    -> {side: {'seconds', 'peak_mib', 'results'}}."""
    records = {side.name: {"seconds": [], "peak_mib": [], "results": []} for side in sides}
    for step in range(args.warmup + args.repeats):
        for side in sides:
            if seeded:
                torch.manual_seed(step)
            result, seconds = timed(getattr(side, measure), step % args.batches)
            if step >= args.warmup:
                records[side.name]["seconds"].append(seconds)
                records[side.name]["results"].append(result)
    for side in sides:
        records[side.name]["peak_mib"].append(peak_rise_mib(getattr(side, measure), 0))
    return records


def relative_difference(a, b) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def compare_training(records, reference="official"):
    """Relative loss difference to the official side: at the first timed step (same weights so far but for the
    warm-up updates) and the largest over the steps (rounding differences compound through the updates)."""
    losses = {name: record["results"] for name, record in records.items()}
    if reference not in losses:
        return {}
    return {name: {"first": relative_difference(losses[reference][0], values[0]),
                   "max": max(relative_difference(a, b) for a, b in zip(losses[reference], values))}
            for name, values in losses.items() if name != reference}


def compare_evaluation(records, reference="official"):
    if reference not in records:
        return {}
    out = {}
    for name, record in records.items():
        if name == reference:
            continue
        pairs = list(zip(records[reference]["results"], record["results"]))
        out[name] = {"max_loss_relative_difference": max(relative_difference(a[0], b[0]) for a, b in pairs),
                     "identical_beams": all(a[1] == b[1] for a, b in pairs)}
    return out


def timing_table(records) -> dict:
    return {name: {"seconds": summary(record["seconds"]), "peak_mib": summary(record["peak_mib"])}
            for name, record in records.items()}


def ratios(table, reference="official") -> dict:
    if reference not in table:
        return {}
    base = table[reference]["seconds"]["median"]
    return {name: base / row["seconds"]["median"] for name, row in table.items() if name != reference}


# ----------------------------------------------------------------------------- measurements


def measure_training(sides, args):
    for side in sides:
        side.model.train()
    records = interleave(sides, "train_step", args, seeded=True)
    table = timing_table(records)
    return {"table": table, "ratios": ratios(table), "loss_relative_difference": compare_training(records)}


def measure_evaluation(sides, args):
    for side in sides:
        side.model.eval()
    records = interleave(sides, "eval_pass", args, seeded=False)
    table = timing_table(records)
    return {"table": table, "ratios": ratios(table), "outputs": compare_evaluation(records)}


def measure_preprocessing(datasets, args):
    """Per-sample CPU seconds of reading + normalising one training clip, interleaved sample by sample, after one
    untimed pass over the set (as from the second epoch on: files in the page cache, paths resolved)."""
    seconds = {name: [] for name in datasets}
    size = len(next(iter(datasets.values())))
    for repeat in range(1 + args.repeats):
        for index in range(size):
            for name, dataset in datasets.items():
                started = time.process_time()
                dataset[index]
                if repeat:
                    seconds[name].append(time.process_time() - started)
    table = {name: {"seconds": summary(values)} for name, values in seconds.items()}
    return {"table": table, "ratios": ratios(table)}


STEP_METHODS = {"training_step": ("train_step", True), "evaluation_pass": ("eval_pass", False)}


def measure_arithmetic(sides, results, args):
    """Per fp32 side and timed measurement: counted GFLOP (the mean over the cycled batches) against the median
    seconds measured above and the fp32 GEMM peak (bench/arithmetic.py; bf16 sides compute on other units, against
    another peak). Runs after the timings: it steps the models again."""
    peak = gemm_peak_gflops()
    arithmetic = {"peak_gflops": peak}
    for key, (method, training) in STEP_METHODS.items():
        if key not in results:
            continue
        table = results[key]["table"]
        reference = table["official"]["seconds"]["median"] if "official" in table else None
        arithmetic[key] = {}
        for side in (side for side in sides if side.precision == "fp32"):
            side.model.train(training)
            gflop = statistics.mean(counted_gflop(getattr(side, method), k) for k in range(args.batches))
            arithmetic[key][side.name] = floor_report(gflop, table[side.name]["seconds"]["median"], peak,
                                                      None if side.name == "official" else reference)
    return arithmetic


def print_arithmetic(arithmetic):
    print(f"\narithmetic (fp32 GEMM peak of this process: {arithmetic['peak_gflops']:.0f} GFLOP per CPU second)")
    for key in STEP_METHODS:
        if key in arithmetic:
            print(f"  {key.replace('_', ' ')}")
            for name, report in arithmetic[key].items():
                print(describe(name, report))


def print_measurement(title, result):
    print(f"\n{title}")
    for name, row in result["table"].items():
        line = f"  {name:18s} {row['seconds']['median']:.4f} s ({row['seconds']['min']:.4f} - {row['seconds']['max']:.4f})"
        if "peak_mib" in row:
            line += f"  peak +{row['peak_mib']['median']:.0f} MiB"
        ratio = result["ratios"].get(name)
        print(line + (f"  x{ratio:.2f} vs official" if ratio else ""))
    for key in ("loss_relative_difference", "outputs"):
        if result.get(key):
            print(f"  {key}: {result[key]}")


# ----------------------------------------------------------------------------- main


def load_official(args, lm_dir, sentences):
    if args.ours_only:
        return None
    if not args.official_repo:
        raise OfficialCodeMissing(
            "no official checkout given: fetch github.com/ZechengLi19/Uni-Sign yourself and pass --official-repo "
            "DIR (or --ours-only for the project side alone)")
    return import_official(Path(args.official_repo), lm_dir, sentences / "pose_format")


SIDE_NAMES = {"ours": "ours", "bf16": "ours bf16", "pruned": "ours bf16 pruned", "lean": "ours chunked loss",
              "unpacked": "ours unpacked decoding", "reordered": "ours, cross cache re-ordered"}
LEAN_LOSS_CHUNK = 256  # target tokens per chunk of the memory-lean loss (--loss-chunk-tokens)


def build_sides(args, official, lm_dir, sentences):
    """(sides, preprocessing datasets): official (when given), ours, and with --recommended ours with bf16 autocast
    and ours with bf16 + a pruned vocabulary; --sides keeps some of ours (each side trains its own copy)."""
    their_model, our_model = build_models(official, lm_dir)
    their_data, our_data = build_datasets(official, sentences)
    plan = batch_plan(len(our_data), args.batch_size, args.batches)
    sides = []
    if their_model is not None:
        their_batches = [official_batch(their_data, indices) for indices in plan]
        tokenizer = our_model.tokenizer  # the original ids (a pruned side below may prune our_model itself)
        decode = lambda ids: tokenizer.batch_decode(ids, skip_special_tokens=True)  # noqa: E731
        sides.append(official_side(their_model, their_batches, args.beams, args.max_new_tokens, decode))
        sides[-1].model = their_model
    wanted = args.sides.split(",") if args.sides else ["ours"] + (["bf16", "pruned"] if args.recommended else [])
    for key in wanted:
        model = our_model if key == wanted[-1] else copy.deepcopy(our_model)  # the last one takes the original
        if key == "pruned":
            model.prune_vocabulary(bench_vocabulary(model, our_data, args.pruned_vocabulary))
        model.loss_chunk_tokens = LEAN_LOSS_CHUNK if key == "lean" else 0
        model.packed_decoding = key != "unpacked"
        batches = [collate_samples([our_data[i] for i in indices], model.target_encoder) for indices in plan]
        autocast = torch.bfloat16 if key in ("bf16", "pruned") else None
        decoding = cross_attention_cache_reordered if key == "reordered" else nullcontext
        sides.append(our_side(model, batches, args.beams, args.max_new_tokens, SIDE_NAMES[key], autocast, decoding))
        sides[-1].model = model
    datasets = {"official": their_data} if their_data is not None else {}
    datasets["ours"] = our_data
    build_store(sentences / "pose_format", progress=False)
    datasets["ours, pose store"] = build_datasets(None, sentences, PoseStore.find(sentences / "pose_format"))[1]
    return sides, datasets


def bench_vocabulary(model, dataset, size) -> list[int]:
    """The corpus' tokens (as --prune-vocabulary keeps them), topped up with the lowest other ids to `size` tokens:
    the synthetic corpus uses far fewer tokens than CSL-Daily does of mT5's vocabulary, so the kept size is set
    to what a real corpus keeps (default: 1/8 of the vocabulary, the issue's estimate for CSL-Daily)."""
    used = corpus_token_ids(model.tokenizer, [entry.text for entry in dataset.entries] + [model.prompt_text()])
    vocabulary = model.mt5_model.config.vocab_size
    size = min(size or vocabulary // 8, vocabulary)
    kept = set(used)
    filler = (token for token in range(vocabulary) if token not in kept)
    return sorted(used + [next(filler) for _ in range(max(0, size - len(used)))])


def run(args, work_dir):
    torch.set_num_threads(args.threads)
    sentences = build_corpus(work_dir)
    texts = [entry.text for entry in read_labels(sentences / "labels.train")]
    lm_dir = build_lm(work_dir, args.scale, texts)
    official = load_official(args, lm_dir, sentences)
    sides, datasets = build_sides(args, official, lm_dir, sentences)
    skip = set(filter(None, args.skip.split(",")))
    results = {"scale": args.scale, "threads": args.threads, "batch_size": args.batch_size,
               "beams": args.beams, "max_new_tokens": args.max_new_tokens}
    if "eval" not in skip:  # first, while both models hold the very same weights
        results["evaluation_pass"] = measure_evaluation(sides, args)
        print_measurement("evaluation pass: loss + beam search (CPU s per batch)", results["evaluation_pass"])
    if "train" not in skip:
        results["training_step"] = measure_training(sides, args)
        print_measurement("training step (CPU s)", results["training_step"])
    if "preprocess" not in skip:
        results["preprocessing"] = measure_preprocessing(datasets, args)
        print_measurement("preprocessing (CPU s per sample)", results["preprocessing"])
    if args.arithmetic:
        results["arithmetic"] = measure_arithmetic(sides, results, args)
        print_arithmetic(results["arithmetic"])
    return results


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = Path(args.work_dir or temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            results = run(args, work_dir)
        except OfficialCodeMissing as error:
            print(f"skipped: {error}")
            return {"skipped": str(error)}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
