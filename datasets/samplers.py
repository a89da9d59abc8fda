"""Batch samplers for training: official random batches and length-grouped batches, both exactly resumable.

Both samplers share one interface, so the trainer handles them alike:

    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, seed=42, num_replicas=world, rank=rank)
    # or  ResumableRandomBatchSampler(len(dataset), batch_size=16, seed=42, num_replicas=world, rank=rank)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_samples, num_workers=...)
    for epoch in range(start_epoch, epochs):
        sampler.set_epoch(epoch)               # keeps a position restored by load_state_dict for this epoch
        for step, batch in enumerate(loader):
            ...
            state = sampler.state_dict(batches_done=step + 1)   # store in the checkpoint
    # on resume:  sampler.load_state_dict(state)  -> the epoch continues at the exact next batch

Every batch list is a pure function of (seed, epoch, lengths, batch_size, num_replicas): nothing depends on
a global random state, and each rank computes the same global plan and takes its own share.

`frame_counts(entries, pose_dir, max_length)` gives the per-sample frame counts the length-grouped sampler
needs (min(T, max_length): what a sample occupies in a padded batch), optionally cached in a JSON file.
"""
import hashlib
import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler

from datasets.formats import DataFormatError, read_pose_file, resolve_pose_path

logger = logging.getLogger(__name__)
STATE_VERSION = 1


class _ResumableBatchSampler(Sampler):
    """Shared epoch / position / state handling. Subclasses implement `_epoch_batches()` -> this rank's batches."""

    kind = "base"

    def __init__(self, num_samples, batch_size, shuffle, seed, drop_last, num_replicas, rank):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, not {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), not {rank}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.start_batch = 0  # where the next iteration of this epoch starts
        self._position = 0  # batches handed out so far in this epoch (what state_dict reports by default)

    # ------------------------------------------------------------------ epoch and position
    def set_epoch(self, epoch, start_batch=None):
        """Select the epoch. A new epoch starts at batch 0; calling it again with the epoch restored by
        `load_state_dict` keeps the restored position. `start_batch` sets the position explicitly."""
        epoch = int(epoch)
        if start_batch is not None:
            self._check_start(start_batch)
            self.start_batch = self._position = int(start_batch)
        elif epoch != self.epoch:
            self.start_batch = self._position = 0
        self.epoch = epoch

    def _check_start(self, start_batch):
        if not 0 <= int(start_batch) <= len(self):
            raise ValueError(f"start_batch {start_batch} is outside [0, {len(self)}] for this sampler")

    def __len__(self):
        """Batches this rank gets in a whole epoch (a resumed epoch yields `len(self) - start_batch`)."""
        raise NotImplementedError

    def batches(self, epoch=None) -> list:
        """This rank's full batch list (lists of dataset indices) for `epoch` (default: the current one)."""
        return self._epoch_batches(self.epoch if epoch is None else int(epoch))

    def _epoch_batches(self, epoch) -> list:
        raise NotImplementedError

    def __iter__(self):
        batches = self._epoch_batches(self.epoch)
        start, self.start_batch = self.start_batch, 0  # the position is used once
        self._position = start
        for batch in batches[start:]:
            self._position += 1
            yield batch

    # ------------------------------------------------------------------ checkpoint state
    def _fingerprint(self) -> dict:
        return {"kind": self.kind, "num_samples": self.num_samples, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "seed": self.seed, "drop_last": self.drop_last,
                "num_replicas": self.num_replicas}

    def state_dict(self, batches_done=None) -> dict:
        """The epoch and the number of this epoch's batches already consumed (same on every rank).

        With DataLoader workers the sampler runs ahead of the training loop (prefetching), so pass the
        number of batches the loop has actually finished as `batches_done`; without workers the sampler's
        own count is exact.
        """
        position = self._position if batches_done is None else int(batches_done)
        return {"version": STATE_VERSION, "epoch": self.epoch, "start_batch": position, **self._fingerprint()}

    def load_state_dict(self, state):
        """Restore epoch and position; raises ValueError when the state belongs to a different setup."""
        expected = self._fingerprint()
        mismatched = {key: (state.get(key), value) for key, value in expected.items() if state.get(key) != value}
        if mismatched:
            details = ", ".join(f"{key}: checkpoint {saved!r} vs now {now!r}"
                                for key, (saved, now) in mismatched.items())
            raise ValueError(f"sampler state does not match this sampler ({details}); the batch order would differ")
        self.epoch = int(state["epoch"])
        self._check_start(state["start_batch"])
        self.start_batch = self._position = int(state["start_batch"])


class ResumableRandomBatchSampler(_ResumableBatchSampler):
    """The official train order: DistributedSampler(shuffle=True, seed) + BatchSampler(drop_last=True).

    Per epoch: torch.randperm(num_samples) from a generator seeded with seed + epoch (not shuffled: 0..n-1).
    Split over ranks like DistributedSampler: with `pad_ranks` (its default, the official setting) the
    permutation is padded by repeating its start to a multiple of num_replicas, else its tail is cut; rank r
    takes indices r, r + R, ... Its share is cut into batches; `drop_last` drops a last, smaller batch.
    The result equals `BatchSampler(DistributedSampler(range(n), R, r, shuffle, seed,
    drop_last=not pad_ranks), batch_size, drop_last)` index for index (a test checks it). With one process
    nothing is padded or cut and every index is used at most once per epoch.
    """

    kind = "random"

    def __init__(self, num_samples, batch_size, shuffle=True, seed=0, drop_last=True, num_replicas=1, rank=0,
                 pad_ranks=True):
        super().__init__(num_samples, batch_size, shuffle, seed, drop_last, num_replicas, rank)
        self.pad_ranks = bool(pad_ranks)

    def _fingerprint(self) -> dict:
        return {**super()._fingerprint(), "pad_ranks": self.pad_ranks}

    def _per_rank(self) -> int:
        n, replicas = self.num_samples, self.num_replicas
        if not self.pad_ranks and n % replicas:
            return math.ceil((n - replicas) / replicas)
        return math.ceil(n / replicas)

    def __len__(self):
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def _epoch_batches(self, epoch) -> list:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + epoch)
            indices = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            indices = list(range(self.num_samples))
        total = self._per_rank() * self.num_replicas
        if total > len(indices) and indices:  # pad_ranks: repeat the start, as DistributedSampler does
            padding = total - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding]
        mine = indices[self.rank:total:self.num_replicas]
        batches = [mine[i:i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches


class LengthGroupedBatchSampler(_ResumableBatchSampler):
    """Batches of samples with similar frame counts, so little of a padded batch is padding.

    Per epoch (generator seeded with (seed, epoch)):
      1. shuffle the indices (if `shuffle`); with drop_last the tail is cut so that every batch is full
         and every rank gets the same number of batches (the dropped samples are random, not the longest);
      2. split them into mega-batches of batch_size * num_replicas * mega_batch_mult samples;
      3. sort each mega-batch by length (longest first, stable) and cut it into global batches of
         batch_size * num_replicas consecutive samples; rank r takes slice r of each global batch, so the
         ranks of one step see similar lengths (no rank waits for a much longer batch);
      4. shuffle the order of the global batches (if `shuffle`).
    Larger `mega_batch_mult` = less padding but batches less random; mega_batch_mult=50 (the default)
    keeps each batch drawn from a random ~1/50 .. 1/1 slice of the data on small/large corpora.
    With drop_last=False the last, smaller batch is kept and the global batch list is padded (by
    repeating its first batches) to a multiple of num_replicas, like DistributedSampler pads.
    """

    kind = "length_grouped"

    def __init__(self, lengths, batch_size, shuffle=True, seed=0, drop_last=True, num_replicas=1, rank=0,
                 mega_batch_mult=50):
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.ndim != 1:
            raise ValueError(f"lengths must be a 1-D sequence, got shape {lengths.shape}")
        if mega_batch_mult < 1:
            raise ValueError(f"mega_batch_mult must be >= 1, not {mega_batch_mult}")
        super().__init__(len(lengths), batch_size, shuffle, seed, drop_last, num_replicas, rank)
        self.lengths = lengths
        self.mega_batch_mult = int(mega_batch_mult)

    def _fingerprint(self) -> dict:
        digest = hashlib.sha1(self.lengths.tobytes()).hexdigest()[:16]
        return {**super()._fingerprint(), "mega_batch_mult": self.mega_batch_mult, "lengths_sha1": digest}

    def __len__(self):
        global_size = self.batch_size * self.num_replicas
        if self.drop_last:
            return self.num_samples // global_size
        return math.ceil(math.ceil(self.num_samples / self.batch_size) / self.num_replicas)

    def _epoch_batches(self, epoch) -> list:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_samples) if self.shuffle else np.arange(self.num_samples)
        global_size = self.batch_size * self.num_replicas
        if self.drop_last:
            order = order[: (self.num_samples // global_size) * global_size]
            group = global_size  # a global batch: one batch per rank
        else:
            group = self.batch_size
        mega_size = global_size * self.mega_batch_mult
        groups = []
        for start in range(0, len(order), mega_size):
            mega = order[start:start + mega_size]
            mega = mega[np.argsort(-self.lengths[mega], kind="stable")]
            groups += [mega[i:i + group] for i in range(0, len(mega), group)]
        if self.shuffle and groups:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        if self.drop_last:
            return [group_[self.rank * self.batch_size:(self.rank + 1) * self.batch_size].tolist()
                    for group_ in groups]
        # drop_last=False: `groups` are single batches (the last may be short); pad to a multiple of R.
        if groups and len(groups) % self.num_replicas:
            padding = self.num_replicas - len(groups) % self.num_replicas
            groups += (groups * math.ceil(padding / len(groups)))[:padding]
        return [batch.tolist() for batch in groups[self.rank::self.num_replicas]]


def padding_stats(batches, lengths) -> dict:
    """Padding of batches padded to their longest sample: {'real', 'total', 'padded', 'fraction'} in frames."""
    lengths = np.asarray(lengths)
    real = total = 0
    for batch in batches:
        batch_lengths = lengths[np.asarray(batch, dtype=np.int64)]
        real += int(batch_lengths.sum())
        total += int(batch_lengths.max()) * len(batch_lengths) if len(batch_lengths) else 0
    return {"real": real, "total": total, "padded": total - real, "fraction": (total - real) / total if total else 0.0}


# ----------------------------------------------------------------------------- frame counts


def _clip_length(path) -> int:
    """Frames the dataset takes from one pose file: (end or T) - start."""
    clip = read_pose_file(path)
    end = clip.end if clip.end is not None else clip.num_frames
    return int(end - clip.start)


def _clip_length_or_error(path):
    try:
        return _clip_length(path), None
    except (DataFormatError, OSError, ValueError) as error:
        return None, str(error)


def _file_key(path) -> list:
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def frame_counts(entries, pose_dir, max_length=256, cache_path=None, num_workers=0, skip_errors=False) -> list:
    """Per entry: the frames its padded batch row holds, min((end or T) - start, max_length).

    entries: LabelEntry list (datasets.formats.read_labels / datasets.registry.load_split); pose_dir: the
    split's pose folder. max_length: the --max_length cap (None: no cap). cache_path: optional JSON file
    (e.g. beside the label file) keeping the raw clip lengths keyed by pose path; a cached length is reused
    while the file's size and mtime are unchanged. num_workers > 0 reads files in that many processes.
    skip_errors: an unreadable pose file gets count 0 (the dataset's skip policy drops it later) instead
    of raising DataFormatError naming the file.
    """
    paths = [resolve_pose_path(pose_dir, entry) for entry in entries]
    cache = {}
    cache_path = Path(cache_path) if cache_path else None
    if cache_path and cache_path.is_file():
        try:
            saved = json.loads(cache_path.read_text(encoding="utf-8"))
            cache = saved.get("clips", {}) if saved.get("version") == 1 else {}
        except (json.JSONDecodeError, AttributeError):
            logger.warning("ignoring unreadable frame-count cache %s", cache_path)
    raw, todo = [None] * len(paths), []
    for i, path in enumerate(paths):
        cached = cache.get(str(path))
        if cached is not None and path.is_file() and cached[1:] == _file_key(path):
            raw[i] = cached[0]
        else:
            todo.append(i)
    if todo:
        todo_paths = [paths[i] for i in todo]
        if num_workers > 0 and len(todo) > 1:
            with ProcessPoolExecutor(num_workers) as pool:
                results = list(pool.map(_clip_length_or_error, todo_paths, chunksize=64))
        else:
            results = [_clip_length_or_error(path) for path in todo_paths]
        for i, (length, error) in zip(todo, results):
            if error is not None:
                if not skip_errors:
                    raise DataFormatError(error)
                logger.warning("frame count of sample '%s' unknown (%s); counted as 0", entries[i].name, error)
                raw[i] = 0
                continue
            raw[i] = length
            cache[str(paths[i])] = [length, *_file_key(paths[i])]
        if cache_path:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache_path.with_name(cache_path.name + ".tmp")
            temporary.write_text(json.dumps({"version": 1, "clips": cache}), encoding="utf-8")
            os.replace(temporary, cache_path)
    return [min(length, max_length) if max_length else length for length in raw]
