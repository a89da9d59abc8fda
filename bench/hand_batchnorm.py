"""Hand BatchNorm probe: does the evaluated pose encoder match the trained one? (docs/official_differences.md 3a)

Trains the pose encoder (tiny preset) + a linear classifier on the synthetic isolated signs, once with the
hands run separately through their shared encoder (official) and once with `batch_hands` (both hands as one
batch), then reports top-1 on training clips with training-mode BatchNorm (batch statistics) and with
evaluation-mode BatchNorm (running statistics), and on the test split (unseen signers, evaluation mode).

    python -m bench.hand_batchnorm                         # generates the default synthetic corpus in a temp dir
    python -m bench.hand_batchnorm --data out/quickstart/data --epochs 3
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.formats import read_labels  # noqa: E402
from datasets.sign_dataset import SignDataset, collate_samples  # noqa: E402
from datasets.synthetic import generate_corpus  # noqa: E402
from models.pose_encoder import PoseEncoder, PoseEncoderConfig  # noqa: E402
from models.pose_encoder import POSE_PRESETS  # noqa: E402


def load_split(isolated_dir, split):
    """The split's samples through the project's dataset (normalised parts, target word), loaded once."""
    dataset = SignDataset(read_labels(isolated_dir / f"labels.{split}"), isolated_dir / "pose_format", task="ISLR")
    return [dataset[index] for index in range(len(dataset))]


def collate(samples, class_ids):
    """collate_samples' parts {part: (B, T_max, V, 3)} and frame mask (B, T_max), and class labels (B,)."""
    batch = collate_samples(samples)
    labels = torch.tensor([class_ids.get(word, -1) for word in batch["targets"]])
    return batch["parts"], batch["frame_mask"], labels


class Probe(nn.Module):
    """Pose encoder -> masked mean over frames -> linear classifier."""

    def __init__(self, num_classes, batch_hands):
        super().__init__()
        self.encoder = PoseEncoder(PoseEncoderConfig(output_dim=256, batch_hands=batch_hands, **POSE_PRESETS["tiny"]))
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, parts, mask):  # -> (B, classes)
        features = self.encoder(parts, mask)  # (B, T, 256)
        weights = mask[..., None].float()
        return self.classifier((features * weights).sum(1) / weights.sum(1))


def accuracy(model, samples, class_ids, training_mode, batch_size):
    model.train(training_mode)
    correct = 0
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            parts, mask, labels = collate(samples[start:start + batch_size], class_ids)
            correct += (model(parts, mask).argmax(-1) == labels).sum().item()
    return 100.0 * correct / len(samples)


def train_probe(train, class_ids, batch_hands, args):
    torch.manual_seed(args.seed)
    model = Probe(len(class_ids), batch_hands)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            parts, mask, labels = collate([train[i] for i in order[start:start + args.batch_size]], class_ids)
            loss = nn.functional.cross_entropy(model(parts, mask), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a synthetic corpus folder (default: generate the default corpus)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(args.data) if args.data else Path(scratch)
        if not args.data:
            generate_corpus(data, seed=args.seed, size="default")
        train, test = load_split(data / "isolated", "train"), load_split(data / "isolated", "test")
    class_ids = {word: index for index, word in enumerate(sorted({sample["target"] for sample in train}))}
    train_subset = [train[i] for i in np.random.default_rng(args.seed).permutation(len(train))[:240]]
    print(f"{len(train)} training clips, {len(test)} test clips (unseen signers), {len(class_ids)} classes, "
          f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}\n")
    print("| hands | train top-1, BatchNorm train mode | train top-1, eval mode | test top-1, eval mode | seconds |")
    print("|---|---|---|---|---|")
    for batch_hands in (False, True):
        started = time.time()
        model = train_probe(train, class_ids, batch_hands, args)
        seconds = time.time() - started
        train_mode = accuracy(model, train_subset, class_ids, True, args.batch_size)
        eval_mode = accuracy(model, train_subset, class_ids, False, args.batch_size)
        test_eval = accuracy(model, test, class_ids, False, 64)
        name = "one batch (--batch-hands)" if batch_hands else "separate (official)"
        print(f"| {name} | {train_mode:.1f} | {eval_mode:.1f} | {test_eval:.1f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
