"""Convert a Uni-Sign checkpoint between our layout and the official one.

    python -m models.export_checkpoint IN.pth OUT.pth                 # -> official {'model': state_dict}
    python -m models.export_checkpoint IN.pth OUT.pth --to ours       # -> ours (config inferred from shapes)
    python -m models.export_checkpoint IN.pth OUT.pth --dtype bfloat16   # as the official training saves

IN may be in either layout (detected from the key names). The input is read with
torch.load(weights_only=True); OUT is written atomically (a temporary file renamed over OUT), so an
interrupted export never leaves a truncated file. The official layout keeps every state-dict entry
under every name, as the official code saves it: the `left`/`right` hand aliases and mT5's
`shared` / `encoder.embed_tokens` / `decoder.embed_tokens` aliases (torch.save stores aliased tensors once).
"""
import argparse
import sys

import torch

from models.checkpoint_layout import LAYOUTS, convert_checkpoint, infer_pose_config, is_official_architecture
from utils.checkpoint import CheckpointError, atomic_save, load_checkpoint_file

DTYPES = {"keep": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def export_checkpoint(in_path, out_path, to="official", dtype="keep") -> dict:
    """Read `in_path` (either layout), write `out_path` in layout `to`; returns a summary dict."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype '{dtype}'; expected one of {sorted(DTYPES)}")
    checkpoint = load_checkpoint_file(in_path)
    converted = convert_checkpoint(checkpoint, to=to, dtype=DTYPES[dtype])
    warnings = []
    try:
        pose_config = infer_pose_config(converted["model"])
        if to == "official" and not is_official_architecture(pose_config):
            warnings.append(
                f"the pose encoder (parts {list(pose_config.parts)}, widths {pose_config.proj_dim} -> "
                f"{list(pose_config.spatial_widths)}) is not the official architecture: the keys follow the "
                f"official layout, but the official code cannot build this model"
            )
    except CheckpointError as error:
        warnings.append(str(error))
    atomic_save(converted, out_path, checksum=to != "official")  # official files hold {'model'} only
    return {"out": str(out_path), "layout": to, "entries": len(converted["model"]), "warnings": warnings}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="checkpoint to convert (ours or official)")
    parser.add_argument("output", help="where to write the converted checkpoint")
    parser.add_argument("--to", default="official", choices=LAYOUTS, help="target layout (default: %(default)s)")
    parser.add_argument("--dtype", default="keep", choices=sorted(DTYPES),
                        help="cast floating tensors (official training saves bfloat16; default: keep)")
    args = parser.parse_args(argv)
    try:
        summary = export_checkpoint(args.input, args.output, args.to, args.dtype)
    except (CheckpointError, ValueError) as error:
        sys.exit(f"error: {error}")
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {summary['out']} ({summary['layout']} layout, {summary['entries']} state-dict entries)")
    return summary


if __name__ == "__main__":
    main()
