"""Samples and batches: label entries + pose files -> normalised part tensors -> padded batches.

Data flows one way: label file -> `SignDataset` (one normalised clip per sample) -> `collate_samples`
(pad by repeating the last frame, frame mask, target labels) -> `DeviceBatches` -> model(**model_inputs(batch),
labels=batch["labels"]).

A sample is {name, parts {part: (T, V, 3)}, frame_numbers, target, lang[, rgb]}; a batch is {names, parts
{part: (B, T_max, V, 3)}, frame_mask (B, T_max), targets (the texts, for the metrics), labels (the model's
encoding of the targets), langs, skipped[, rgb]}.
"""
import functools
import logging
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.formats import (DEFAULT_MAX_FRAMES, DataFormatError, LabelEntry, check_frame_count, read_pose_file,
                              resolve_pose_path)
from datasets.keypoints import PARTS, normalize_parts, sample_frame_indices
from datasets.pose_store import PoseStore
from datasets.rgb import HandCropCache, RGBSampling, build_rgb_sample, collate_rgb
from datasets.tasks import get_task

logger = logging.getLogger(__name__)
SKIP_POLICIES = ("error", "skip")


def target_text(entry: LabelEntry, task) -> str:
    """What the model must generate: the task's target field (the gloss string for CSLR, the text otherwise)."""
    task = get_task(task)
    target = getattr(entry, task.target_field)
    if task.target_field == "gloss" and not target.strip():
        raise DataFormatError(f"sample '{entry.name}': task {task.name} needs a gloss, but field 'gloss' is empty")
    return target


class SignDataset(Dataset):
    """One sample = {name, parts: {part: float32 (T, V, 3)}, frame_numbers (T,), target, lang[, rgb]}.

    Frames above `max_length` are randomly sub-sampled as officially, but from a generator seeded by
    (seed, epoch, index) so runs, resumes and evaluations are reproducible. With skip_policy='skip' an
    unreadable sample is logged and returned as None (the collate drops and counts it); the default
    'error' raises. A broken sample is never replaced by another one. Samples named in `exclude` (found
    bad by the data check before training, datasets/preflight.py) are skipped and counted the same way.
    Clips come from the preprocessed pose store of `pose_dir` when one was built (datasets/pose_store.py): the
    same values, without unpickling and normalising them again.
    """

    def __init__(self, entries, pose_dir, task="SLT", max_length=256, seed=42, skip_policy="error", rgb=None,
                 lang=None, max_frames=DEFAULT_MAX_FRAMES, pose_store="auto"):
        """rgb: None (pose-only) or {'video_dir', 'sample_ratio', 'sampling_rule', 'official_crop', 'cache_dir'};
        lang: the prompt language of this corpus (needed only when corpora of several languages are mixed);
        max_frames: clips with more frames are refused before they are read into memory;
        pose_store: 'auto' (the store of pose_dir when there is one), a PoseStore, or None (read the files)."""
        get_task(task)  # UnknownTaskError for a name not in datasets/tasks.py
        if skip_policy not in SKIP_POLICIES:
            raise ValueError(f"unknown skip policy '{skip_policy}'; expected one of {SKIP_POLICIES}")
        self.entries = list(entries)
        self.pose_dir = pose_dir
        self.task = task
        self.max_length = max_length
        self.seed = seed
        self.skip_policy = skip_policy
        self.rgb = rgb
        self.lang = lang
        self.max_frames = max_frames
        self.excluded = set()
        self.pose_store = PoseStore.find(pose_dir) if pose_store == "auto" else pose_store
        self._pose_paths = {}  # sample name -> resolved pose file
        self.crop_cache = HandCropCache(rgb["cache_dir"]) if rgb and rgb.get("cache_dir") else None
        self.rgb_sampling = RGBSampling.from_dict(rgb) if rgb is not None else None
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.entries)

    def exclude(self, names):
        """Skip (and count) these samples from now on."""
        self.excluded |= set(names)

    def __getitem__(self, index):
        entry = self.entries[index]
        if entry.name in self.excluded:
            return None
        try:
            return self._load(entry, index)
        except (DataFormatError, OSError, ValueError) as error:
            if self.skip_policy == "error":
                raise
            logger.warning("skipping sample '%s': %s", entry.name, error)
            return None

    def _read_clip(self, entry):
        """(clip, stored): the pose store's copy when it is current, else the file's (stored is then None)."""
        path = self._pose_paths.get(entry.name)
        if path is None:
            path = self._pose_paths[entry.name] = resolve_pose_path(self.pose_dir, entry)
        stored = self.pose_store.lookup(path) if self.pose_store is not None else None
        if stored is None:
            return read_pose_file(path, self.max_frames), None
        check_frame_count(stored.num_frames, path, self.max_frames)
        return stored, stored

    def _load(self, entry, index):
        clip, stored = self._read_clip(entry)
        end = clip.end if clip.end is not None else clip.num_frames
        rng = random.Random(f"{self.seed}-{self.epoch}-{index}")
        frame_numbers = clip.start + sample_frame_indices(end - clip.start, self.max_length, rng)  # (T,)
        parts = stored.normalised_parts(frame_numbers) if stored is not None else None
        if parts is None:
            parts = normalize_parts(clip.keypoints[frame_numbers], clip.scores[frame_numbers])
        sample = {
            "name": entry.name,
            "parts": {part: torch.from_numpy(np.array(values, dtype=np.float32)) for part, values in parts.items()},
            "frame_numbers": frame_numbers,  # (T,) the clip's frames the sample holds
            "target": target_text(entry, self.task),
            "lang": self.lang,
        }
        if self.rgb is not None:
            sample["rgb"] = self._hand_crops(entry, clip, frame_numbers, index)
        return sample

    def _hand_crops(self, entry, clip, frame_numbers, index):
        """Score-aware sampled hand crops of this clip's video (official: sampled afresh, also at eval)."""
        rng, sampling = np.random.default_rng([self.seed, self.epoch, index]), self.rgb_sampling
        return build_rgb_sample(
            Path(self.rgb["video_dir"]) / entry.video_path, clip.keypoints[frame_numbers], clip.scores[frame_numbers],
            frame_numbers, sampling.sample_ratio, rng, self.crop_cache, sampling.official_crop,
            sampling.sampling_rule,
        )


def pad_repeat_last(sequences) -> torch.Tensor:
    """Pad a list of (T_i, ...) tensors to (B, T_max, ...) by repeating each one's last frame (official)."""
    longest = max(len(sequence) for sequence in sequences)
    padded = [
        torch.cat([sequence, sequence[-1:].expand(longest - len(sequence), *sequence.shape[1:])])
        for sequence in sequences
    ]
    return torch.stack(padded)


def counting_skipped(collate):
    """A collate function that never sees skipped (None) samples: they are dropped and counted in the batch's
    `skipped`; a batch of skipped samples only is {names: [], skipped: n}."""

    @functools.wraps(collate)
    def collate_present(samples, *args, **kwargs) -> dict:
        present = [sample for sample in samples if sample is not None]
        skipped = len(samples) - len(present)
        if not present:
            return {"names": [], "skipped": skipped}
        return {**collate(present, *args, **kwargs), "skipped": skipped}

    return collate_present


@counting_skipped
def collate_samples(samples, target_encoder=None) -> dict:
    """Batch samples: parts (B, T_max, V, 3) padded with the last frame, frame_mask (B, T_max) int64, and the
    targets' `labels` when a `target_encoder` (the model's, see datasets/targets.py) is given."""
    lengths = torch.tensor([len(sample["parts"]["body"]) for sample in samples])
    frame_mask = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()
    batch = {
        "names": [sample["name"] for sample in samples],
        "parts": {part: pad_repeat_last([sample["parts"][part] for sample in samples]) for part in PARTS},
        "frame_mask": frame_mask,
        "targets": [sample["target"] for sample in samples],
        "langs": [sample["lang"] for sample in samples] if samples[0]["lang"] else None,
    }
    if target_encoder is not None:
        batch["labels"] = target_encoder(batch["targets"])
    if "rgb" in samples[0]:
        batch["rgb"] = collate_rgb([sample["rgb"] for sample in samples])
    return batch


def batch_collator(target_encoder):
    """The DataLoader `collate_fn` that batches samples for a model with this `target_encoder`."""
    return functools.partial(collate_samples, target_encoder=target_encoder)


def model_inputs(batch) -> dict:
    """The keyword arguments every model takes from a batch (all but the labels)."""
    return {"parts": batch["parts"], "frame_mask": batch["frame_mask"], "rgb": batch.get("rgb"),
            "langs": batch.get("langs")}


class DeviceBatches:
    """The non-empty batches of `loader`, moved to `device`.

    `counts` ({'batch', 'skipped'}, updated in place; a new one by default) counts the batches drawn from the
    loader, empty ones included (the position in the epoch that a resume restarts from), and the samples the
    collate dropped (unreadable ones under skip_policy='skip').
    """

    def __init__(self, loader, device, counts=None):
        self.loader, self.device = loader, device
        self.counts = counts if counts is not None else {"batch": 0, "skipped": 0}

    def __iter__(self):
        for batch in self.loader:
            self.counts["batch"] += 1
            self.counts["skipped"] += batch["skipped"]
            if batch["names"]:
                yield batch_to_device(batch, self.device)

    @property
    def skipped(self) -> int:
        return self.counts["skipped"]

    def __len__(self):
        return len(self.loader)


def batch_to_device(batch, device):
    """Move every tensor of a batch (nested in dicts and lists: parts, views, rgb) to `device`."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: batch_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, list):
        return [batch_to_device(value, device) for value in batch]
    return batch
