"""Training throughput: samples/s, target tokens/s, frames/s, peak memory and (on a GPU) model FLOPs utilisation.

The model is built exactly as train.py builds it (`get_args_parser`, `build_model`), trained with the
engine's optimizer (AdamW, timm no-decay rule) at --batch-size with one optimizer step per batch
(forward, backward, grad-norm clip 1.0, step, zero_grad). Batches come from the synthetic news set
(stage-1 pre-training data), are collated once before timing and cycled, so the figures are the model's;
the data-loading rate (single process, no workers) is reported separately.

    python -m bench.train_throughput                                   # embedded default, tiny + official presets
    python -m bench.train_throughput --pose-preset official --steps 20 --json out/bench/train.json
    python -m bench.train_throughput --lm-path pretrained_weight/mt5-base --dtype bf16   # on a CUDA GPU

Without --data the tiny synthetic corpus is generated, and without --lm-path the embedded default LM
(models.language_model.EmbeddedLMConfig) is built from its texts, both in --work-dir.
Peak memory: CUDA: torch.cuda.max_memory_allocated over the timed steps. CPU: the process's peak resident
set (VmHWM) over the timed steps, reset before them through /proc/self/clear_refs (Linux); elsewhere the
lifetime peak from resource.getrusage. Each preset runs in its own process so the peaks do not mix.
FLOPs: counted with torch.utils.flop_counter.FlopCounterMode on one forward + backward of every distinct
batch (matmuls and convolutions of the pose encoder and the LM; the optimizer and element-wise ops are not
counted); also the 6 * params * tokens estimate of the LM alone. MFU = counted FLOPs per second / the GPU's
peak dense bf16 (or fp32) FLOP/s (--peak-tflops, or from the device name for A100 / H100 / H200).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

# Dense (no sparsity) peak tensor-core TFLOP/s from the vendors' data sheets: (bf16, tf32/fp32).
PEAK_TFLOPS = {
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.0),  # SXM; H100 NVL is listed per GPU close to this
    "H200": (989.0, 494.0),
    "A100": (312.0, 156.0),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="synthetic corpus root (default: generate the tiny one)")
    parser.add_argument("--subset", default="news", choices=["news", "sentences"], help="which synthetic subset")
    parser.add_argument("--lm-path", default=None, help="MT5 directory (default: build the embedded default LM)")
    parser.add_argument("--pose-preset", default="tiny,official",
                        help="comma-separated presets of train.py --pose-preset (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batch-hands", action="store_true",
                        help="train.py --batch-hands: both hands as one batch (the quickstart's model)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--distinct-batches", type=int, default=4, help="batches collated once and cycled")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                        help="bf16: torch.autocast(bfloat16) around forward and loss (weights stay fp32)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); use 1 on a machine shared with other jobs, "
                             "where more threads than free cores slows every step down several times")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: by name)")
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FLOP count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="where the corpus / LM are built (default: temp dir)")
    parser.add_argument("--json", default=None, help="write the results (a list, one entry per preset) here")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # internal: one preset, JSON out
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- memory


def _vm_hwm_kib():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_memory(device) -> str:
    """Start a fresh peak; returns how the peak is measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return "torch.cuda.max_memory_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        if _vm_hwm_kib() is not None:
            return "VmHWM (peak RSS) over the timed steps"
    except OSError:
        pass
    return "getrusage ru_maxrss (process lifetime peak RSS)"


def peak_memory_mib(device, method) -> dict:
    if device.type == "cuda":
        return {"peak_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20,
                "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2 ** 20}
    if method.startswith("VmHWM"):
        return {"peak_mib": _vm_hwm_kib() / 1024}
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"peak_mib": maxrss / (2 ** 20 if sys.platform == "darwin" else 1024)}


def current_rss_mib():
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2 ** 20
    except ImportError:
        return None


# ----------------------------------------------------------------------------- setup


def corpus_texts(data_dir) -> list:
    """The texts the embedded tokenizer is trained on (as script/quickstart.py does)."""
    from datasets.formats import read_labels

    data_dir = Path(data_dir)
    texts = [entry.text for entry in read_labels(data_dir / "news" / "labels.json")]
    for subset in ("sentences", "isolated"):
        label_file = data_dir / subset / "labels.train"
        if label_file.is_file():
            for entry in read_labels(label_file):
                texts += [entry.text] + ([entry.gloss] if entry.gloss else [])
    return texts


def prepare(args, work_dir):
    """-> (data_dir, lm_path), generating the tiny corpus / the embedded LM when not given."""
    data_dir = Path(args.data) if args.data else Path(work_dir) / "synthetic_tiny"
    if not args.data and not (data_dir / "corpus.json").is_file():
        from datasets.synthetic import generate_corpus

        generate_corpus(data_dir, seed=args.seed, size="tiny")
    lm_path = Path(args.lm_path) if args.lm_path else Path(work_dir) / "embedded_lm"
    if not args.lm_path and not (lm_path / "config.json").is_file():
        from models.language_model import EmbeddedLMConfig, build_embedded_lm

        build_embedded_lm(corpus_texts(data_dir), lm_path, EmbeddedLMConfig(), seed=args.seed)
    return data_dir, lm_path


def build(args, preset, data_dir, lm_path, device):
    """Model, optimizer and dataset as train.py builds them."""
    from datasets.registry import get_dataset_spec
    from engine import build_optimizer
    from runs.arguments import get_args_parser
    from runs.building import build_model, seed_everything, split_dataset

    dataset_name = "Synthetic_News" if args.subset == "news" else "Synthetic"
    subset_dir = Path(data_dir) / args.subset
    train_args = get_args_parser().parse_args([
        "--dataset", dataset_name, "--task", "SLT", "--labels-dir", str(subset_dir),
        "--pose-dir", str(subset_dir / "pose_format"), "--lm-path", str(lm_path), "--pose-preset", preset,
        "--batch-size", str(args.batch_size), "--max_length", str(args.max_length), "--seed", str(args.seed),
        "--gradient-accumulation-steps", "1", "--lr", "3e-4", *(["--batch-hands"] if args.batch_hands else []),
    ])
    seed_everything(train_args.seed)
    spec = get_dataset_spec(train_args.dataset, train_args.dataset_config, train_args.labels_dir,
                            train_args.pose_dir, train_args.rgb_dir)
    model = build_model(train_args, spec).to(device)
    betas = tuple(train_args.opt_betas) if train_args.opt_betas else (0.9, 0.999)
    optimizer = build_optimizer(model, train_args.lr, train_args.weight_decay, train_args.opt_eps, betas)
    dataset = split_dataset(train_args, spec, "train")  # the training set exactly as train.py builds it
    return model, optimizer, dataset, train_args


def collate_batches(dataset, args, target_encoder):
    """Distinct batches from the official random order (ResumableRandomBatchSampler) + the loading rate."""
    from datasets.samplers import ResumableRandomBatchSampler
    from datasets.sign_dataset import collate_samples

    sampler = ResumableRandomBatchSampler(len(dataset), args.batch_size, seed=args.seed)
    plan = sampler.batches(0)
    if not plan:
        sys.exit(f"the training set has {len(dataset)} samples, fewer than --batch-size {args.batch_size}")
    started = time.perf_counter()
    batches = [collate_samples([dataset[i] for i in plan[k % len(plan)]], target_encoder)
               for k in range(args.distinct_batches)]
    loading_seconds = time.perf_counter() - started
    return batches, args.distinct_batches * args.batch_size / loading_seconds


def parameter_counts(model) -> dict:
    lm = model.mt5_model
    embeddings = {id(p) for p in lm.get_input_embeddings().parameters()}

    def count(module, skip=()):
        return sum(p.numel() for p in module.parameters() if id(p) not in skip)

    return {
        "total": count(model),
        "pose_encoder": count(model.pose_encoder),
        "lm_encoder": count(lm.get_encoder(), embeddings),
        "lm_decoder": count(lm.get_decoder(), embeddings),
        "lm_head": count(lm.get_output_embeddings()),
        "lm_embedding": sum(p.numel() for p in lm.get_input_embeddings().parameters()),
    }


# ----------------------------------------------------------------------------- the steps


def autocast_context(args, device):
    if args.dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def train_step(model, optimizer, batch, args, device):
    """One optimizer step as engine.train_one_epoch does it (accumulation 1); returns the loss."""
    with autocast_context(args, device):
        output = model(batch["parts"], batch["frame_mask"], batch["labels"])
    output.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return output.loss.detach()


def count_flops(model, batch, args, device) -> int:
    """Forward + backward FLOPs of one batch (no optimizer step; gradients discarded)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        with autocast_context(args, device):
            loss = model(batch["parts"], batch["frame_mask"], batch["labels"]).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def batch_sizes(model, batch) -> dict:
    """Tokens and frames of one batch: what the LM and the pose encoder process."""
    from datasets.targets import IGNORE_INDEX

    labels = batch["labels"]
    mask = batch["frame_mask"]
    return {
        "samples": len(batch["names"]),
        "target_tokens": int((labels != IGNORE_INDEX).sum()),  # real target tokens incl. </s>
        "decoder_positions": int(labels.numel()),  # padded to the batch's longest target
        "frames": int(mask.sum()),  # real pose frames
        "padded_frames": int(mask.numel()),
        "encoder_positions": int(mask.numel() + mask.shape[0] * len(model.prompt_ids)),
    }


def six_n_d(params, sizes) -> float:
    """6 * params * tokens for the LM: encoder params x encoder positions + (decoder + head) x decoder positions."""
    return 6.0 * (params["lm_encoder"] * sizes["encoder_positions"]
                  + (params["lm_decoder"] + params["lm_head"]) * sizes["decoder_positions"])


def device_peak_tflops(args, device):
    if args.peak_tflops:
        return args.peak_tflops
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (bf16, fp32) in PEAK_TFLOPS.items():  # "H100 PCIe" is checked before "H100"
        if all(part in name for part in key.split()):
            return bf16 if args.dtype == "bf16" else fp32
    return None


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_preset(args, preset, data_dir, lm_path) -> dict:
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, optimizer, dataset, _ = build(args, preset, data_dir, lm_path, device)
    model.train()
    rss_after_build = current_rss_mib()  # runtime + model + optimizer (no optimizer state yet)
    batches, loading_rate = collate_batches(dataset, args, model.target_encoder)
    from datasets.sign_dataset import batch_to_device

    batches = [batch_to_device(batch, device) for batch in batches]
    params = parameter_counts(model)
    sizes = [batch_sizes(model, batch) for batch in batches]
    flops = [count_flops(model, batch, args, device) for batch in batches] if args.flops else None

    for step in range(args.warmup):
        train_step(model, optimizer, batches[step % len(batches)], args, device)
    synchronize(device)
    method = reset_peak_memory(device)
    rss_before = current_rss_mib()
    step_seconds, losses = [], []
    totals = dict.fromkeys(sizes[0], 0)
    counted_flops = estimated_flops = 0.0
    for step in range(args.steps):
        k = (args.warmup + step) % len(batches)
        started = time.perf_counter()
        loss = train_step(model, optimizer, batches[k], args, device)
        synchronize(device)
        step_seconds.append(time.perf_counter() - started)
        losses.append(float(loss))
        for key, value in sizes[k].items():
            totals[key] += value
        counted_flops += flops[k] if flops else 0.0
        estimated_flops += six_n_d(params, sizes[k])
    memory = peak_memory_mib(device, method)
    seconds = sum(step_seconds)
    result = {
        "preset": preset,
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()})"),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "dtype": args.dtype,
        "lm_path": str(lm_path) if args.lm_path else "embedded default (built)",
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "params": params,
        "step_seconds_mean": seconds / args.steps,
        "step_seconds_median": sorted(step_seconds)[len(step_seconds) // 2],
        "samples_per_s": totals["samples"] / seconds,
        "target_tokens_per_s": totals["target_tokens"] / seconds,
        "frames_per_s": totals["frames"] / seconds,
        "padded_frames_per_s": totals["padded_frames"] / seconds,
        "mean_frames_per_sample": totals["frames"] / totals["samples"],
        "loading_samples_per_s": loading_rate,
        "loss_first_last": [losses[0], losses[-1]],
        "memory_method": method,
        "rss_after_build_mib": rss_after_build,
        "rss_before_timed_mib": rss_before,
        **memory,
        "lm_6nd_flops_per_step": estimated_flops / args.steps,
    }
    if flops:
        result["counted_flops_per_step"] = counted_flops / args.steps
        result["achieved_tflops"] = counted_flops / seconds / 1e12
        peak = device_peak_tflops(args, device)
        if peak:
            result["peak_tflops"] = peak
            result["mfu"] = result["achieved_tflops"] / peak
    return result


# ----------------------------------------------------------------------------- report


def format_table(results) -> str:
    lines = ["| preset | device | dtype | threads | params (M) | samples/s | target tokens/s | frames/s | "
             "step (s) | peak memory (MiB) | TFLOP/s (counted) | MFU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        tflops = f"{r['achieved_tflops']:.4f}" if "achieved_tflops" in r else "-"
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "n/a"
        lines.append(f"| {r['preset']} | {r['device']} | {r['dtype']} | {r['torch_threads']} | "
                     f"{r['params']['total'] / 1e6:.2f} | {r['samples_per_s']:.1f} | {r['target_tokens_per_s']:.0f} | "
                     f"{r['frames_per_s']:.0f} | {r['step_seconds_mean']:.3f} | {r['peak_mib']:.0f} | {tflops} | "
                     f"{mfu} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    presets = [preset.strip() for preset in args.pose_preset.split(",") if preset.strip()]
    from models.pose_encoder import POSE_PRESETS

    unknown = [preset for preset in presets if preset not in POSE_PRESETS]
    if unknown:
        sys.exit(f"unknown --pose-preset {unknown}; choose from {sorted(POSE_PRESETS)}")
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = Path(args.work_dir or temporary)
        if args.single:
            data_dir, lm_path = prepare(args, work_dir)
            print("RESULT " + json.dumps(run_preset(args, presets[0], data_dir, lm_path)))
            return None
        data_dir, lm_path = prepare(args, work_dir)  # once, shared by the per-preset processes
        results = []
        for preset in presets:
            command = [sys.executable, "-m", "bench.train_throughput", "--single", "--pose-preset", preset,
                       "--data", str(data_dir), "--lm-path", str(lm_path)]
            command += _passthrough(argv if argv is not None else sys.argv[1:])
            print(f"running preset {preset} ...", flush=True)
            completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
            lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
            if completed.returncode != 0 or not lines:
                sys.exit(f"preset {preset} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
            result = json.loads(lines[-1][len("RESULT "):])
            if not args.lm_path:
                result["lm_path"] = "embedded default (built)"
            results.append(result)
    print(format_table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


def _passthrough(argv) -> list:
    """The user's flags minus those the parent sets for each child."""
    skip_with_value = {"--pose-preset", "--data", "--lm-path", "--json", "--work-dir"}
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in skip_with_value:
            skip = "=" not in item
            continue
        out.append(item)
    return out


if __name__ == "__main__":
    main()
