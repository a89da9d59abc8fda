"""Batch samplers: coverage, determinism, rank splits, exact mid-epoch resume, padding, frame counts."""
import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from datasets.formats import DataFormatError, LabelEntry, write_pose_npz, write_pose_pkl
from datasets.samplers import (
    LengthGroupedBatchSampler,
    ResumableRandomBatchSampler,
    frame_counts,
    padding_stats,
)


def skewed_lengths(n=1000, seed=0):
    """CSL-Daily-like frame counts: log-normal, mean ~120, capped at 256."""
    rng = np.random.default_rng(seed)
    return np.minimum(rng.lognormal(np.log(110), 0.45, n).astype(int) + 10, 256)


def make(kind, n=103, batch_size=8, **kwargs):
    if kind == "grouped":
        return LengthGroupedBatchSampler(skewed_lengths(n), batch_size, **kwargs)
    return ResumableRandomBatchSampler(n, batch_size, **kwargs)


KINDS = ["grouped", "random"]


def flat(batches):
    return [index for batch in batches for index in batch]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,batch_size", [(103, 8), (64, 8), (7, 8), (1, 1)])
def test_every_index_at_most_once_with_drop_last(kind, n, batch_size):
    sampler = make(kind, n, batch_size, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        indices = flat(batches)
        assert len(indices) == len(set(indices)) == (n // batch_size) * batch_size
        assert all(len(batch) == batch_size for batch in batches)
        assert set(indices) <= set(range(n))
        assert len(batches) == len(sampler)


@pytest.mark.parametrize("kind", KINDS)
def test_without_drop_last_every_index_exactly_once(kind):
    sampler = make(kind, 103, 8, drop_last=False, seed=1)
    batches = list(sampler)
    assert sorted(flat(batches)) == list(range(103))
    assert len(batches) == len(sampler) == 13
    assert sorted(len(batch) for batch in batches)[0] == 103 % 8


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_by_seed_and_epoch(kind):
    first, second = make(kind, seed=5), make(kind, seed=5)
    for epoch in (0, 1, 7):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        assert list(first) == list(second)
        assert first.batches(epoch) == list(first)  # `batches()` is the same plan, without consuming
    other_seed = make(kind, seed=6)
    assert other_seed.batches(0) != first.batches(0)


@pytest.mark.parametrize("kind", KINDS)
def test_epochs_differ(kind):
    sampler = make(kind, seed=0)
    plans = [sampler.batches(epoch) for epoch in range(4)]
    assert all(plans[i] != plans[j] for i in range(4) for j in range(i + 1, 4))


def test_grouped_batches_are_not_the_same_sets_every_epoch():
    """Shuffling before mega-batching changes which samples share a batch, not only the batch order."""
    sampler = make("grouped", 400, 8, seed=0, mega_batch_mult=5)
    sets = [{frozenset(batch) for batch in sampler.batches(epoch)} for epoch in range(2)]
    assert len(sets[0] & sets[1]) < len(sets[0]) / 2


def test_unshuffled_is_fixed_across_epochs():
    sampler = make("grouped", shuffle=False)
    assert sampler.batches(0) == sampler.batches(1)
    random_sampler = make("random", shuffle=False)
    assert flat(random_sampler.batches(3)) == list(range(len(flat(random_sampler.batches(3)))))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_ranks_disjoint_and_equal(kind, replicas):
    n, batch_size = 203, 8
    extra = {"pad_ranks": False} if kind == "random" else {}
    samplers = [make(kind, n, batch_size, seed=2, num_replicas=replicas, rank=rank, **extra)
                for rank in range(replicas)]
    for epoch in (0, 1):
        per_rank = [sampler.batches(epoch) for sampler in samplers]
        counts = {len(batches) for batches in per_rank}
        assert len(counts) == 1 and counts == {len(samplers[0])}
        indices = [set(flat(batches)) for batches in per_rank]
        for i in range(replicas):
            for j in range(i + 1, replicas):
                assert not indices[i] & indices[j]
        used = sum(len(found) for found in indices)
        assert used == len(set().union(*indices))
        if kind == "grouped":  # all ranks together use floor(n / (B R)) global batches
            assert used == (n // (batch_size * replicas)) * batch_size * replicas


def test_grouped_ranks_of_one_step_have_similar_lengths():
    lengths = skewed_lengths(2000)
    samplers = [LengthGroupedBatchSampler(lengths, 8, seed=0, num_replicas=4, rank=rank) for rank in range(4)]
    plans = [sampler.batches() for sampler in samplers]
    spreads = []
    for step in range(len(plans[0])):
        longest = [lengths[plans[rank][step]].max() for rank in range(4)]
        spreads.append(max(longest) - min(longest))
    assert np.median(spreads) <= 5


def test_grouped_union_over_ranks_equals_single_process_samples_per_step():
    """With R ranks the global step batch is B*R consecutive sorted samples, split into R slices."""
    lengths = skewed_lengths(500)
    ranks = [LengthGroupedBatchSampler(lengths, 4, seed=9, num_replicas=2, rank=r).batches() for r in range(2)]
    for a, b in zip(*ranks):
        assert min(lengths[a]) >= max(lengths[b])  # rank 0 takes the longer half of each sorted global batch


@pytest.mark.parametrize("n,replicas,batch_size", [(103, 1, 8), (103, 2, 8), (103, 3, 5), (10, 4, 2), (9, 2, 4)])
@pytest.mark.parametrize("pad_ranks", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
def test_random_sampler_equals_distributed_sampler(n, replicas, batch_size, pad_ranks, drop_last):
    for rank in range(replicas):
        ours = ResumableRandomBatchSampler(n, batch_size, seed=42, drop_last=drop_last, num_replicas=replicas,
                                           rank=rank, pad_ranks=pad_ranks)
        reference_sampler = DistributedSampler(range(n), replicas, rank, shuffle=True, seed=42,
                                               drop_last=not pad_ranks)
        reference = BatchSampler(reference_sampler, batch_size, drop_last)
        for epoch in (0, 3):
            ours.set_epoch(epoch)
            reference_sampler.set_epoch(epoch)
            assert list(ours) == list(reference)
            assert len(ours) == len(reference)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stop_after", [0, 1, 5, 12])
def test_resume_mid_epoch_reproduces_the_remaining_batches(kind, stop_after):
    uninterrupted = make(kind, 103, 8, seed=11)
    uninterrupted.set_epoch(2)
    expected = list(uninterrupted)

    interrupted = make(kind, 103, 8, seed=11)
    interrupted.set_epoch(2)
    iterator = iter(interrupted)
    consumed = [next(iterator) for _ in range(stop_after)]
    state = json.loads(json.dumps(interrupted.state_dict()))  # survives a JSON / checkpoint round trip
    assert state["epoch"] == 2 and state["start_batch"] == stop_after

    resumed = make(kind, 103, 8, seed=11)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the trainer's loop calls set_epoch again: the restored position is kept
    rest = list(resumed)
    assert consumed + rest == expected
    # the next epochs start from batch 0 and equal an uninterrupted run
    resumed.set_epoch(3)
    uninterrupted.set_epoch(3)
    assert list(resumed) == list(uninterrupted)
    # the position is used once: iterating the same epoch again starts at 0
    resumed.set_epoch(3)
    assert list(resumed) == list(uninterrupted)


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_start_batch_and_batches_done(kind):
    sampler = make(kind, seed=4)
    full = sampler.batches(1)
    sampler.set_epoch(1, start_batch=3)
    assert list(sampler) == full[3:]
    # a loader with workers runs ahead: the trainer passes how many batches it finished
    sampler.set_epoch(2)
    iterator = iter(sampler)
    for _ in range(6):
        next(iterator)
    assert sampler.state_dict(batches_done=4)["start_batch"] == 4
    with pytest.raises(ValueError):
        sampler.set_epoch(1, start_batch=len(sampler) + 1)


def test_resume_through_a_dataloader():
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 103

        def __getitem__(self, index):
            return index

    def loader(sampler):
        return DataLoader(Items(), batch_sampler=sampler, collate_fn=list)

    sampler = make("grouped", seed=1)
    assert len(loader(sampler)) == len(sampler)
    sampler.set_epoch(0)
    expected = list(loader(sampler))
    sampler = make("grouped", seed=1)
    sampler.set_epoch(0)
    seen = []
    for step, batch in enumerate(loader(sampler)):
        seen.append(batch)
        if step == 4:
            state = sampler.state_dict(batches_done=step + 1)
            break
    resumed = make("grouped", seed=1)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)
    assert seen + list(loader(resumed)) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_state_from_another_setup_is_refused(kind):
    state = make(kind, 103, 8, seed=1).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        make(kind, 103, 16, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="seed"):
        make(kind, 103, 8, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="kind"):
        make("random" if kind == "grouped" else "grouped", 103, 8, seed=1).load_state_dict(state)


def test_grouped_state_detects_changed_lengths():
    lengths = skewed_lengths(100)
    state = LengthGroupedBatchSampler(lengths, 8).state_dict()
    changed = lengths.copy()
    changed[0] += 1
    with pytest.raises(ValueError, match="lengths"):
        LengthGroupedBatchSampler(changed, 8).load_state_dict(state)


def test_grouping_reduces_padding():
    lengths = skewed_lengths(2000)
    for batch_size in (8, 16):
        random = padding_stats(ResumableRandomBatchSampler(len(lengths), batch_size).batches(), lengths)
        grouped = padding_stats(LengthGroupedBatchSampler(lengths, batch_size).batches(), lengths)
        assert random["fraction"] > 0.2
        assert grouped["fraction"] < 0.25 * random["fraction"]
        # same samples used (drop_last cuts < B), so the real frame totals are close
        assert abs(random["real"] - grouped["real"]) < 16 * 256


def test_padding_stats():
    stats = padding_stats([[0, 1], [2]], [3, 5, 4])
    assert stats == {"real": 12, "total": 14, "padded": 2, "fraction": 2 / 14}


def test_invalid_arguments():
    with pytest.raises(ValueError):
        ResumableRandomBatchSampler(10, 0)
    with pytest.raises(ValueError):
        ResumableRandomBatchSampler(10, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError):
        LengthGroupedBatchSampler([[1, 2]], 2)
    with pytest.raises(ValueError):
        LengthGroupedBatchSampler([1, 2], 2, mega_batch_mult=0)


# ----------------------------------------------------------------------------- frame counts


def _pose(frames):
    return np.zeros((frames, 133, 2), np.float32), np.ones((frames, 133), np.float32)


def test_frame_counts_reads_bounds_caps_and_caches(tmp_path):
    pose_dir = tmp_path / "poses"
    write_pose_pkl(pose_dir / "a.pkl", *_pose(30))
    write_pose_npz(pose_dir / "b.npz", *_pose(300))
    write_pose_pkl(pose_dir / "c.pkl", *_pose(40), start=5, end=25)
    entries = [LabelEntry("a", "x", video_path="a.mp4"), LabelEntry("b", "y", video_path="b.mp4"),
               LabelEntry("c", "z", video_path="c.mp4")]
    assert frame_counts(entries, pose_dir, max_length=None) == [30, 300, 20]
    cache = tmp_path / "labels.train.frames.json"
    assert frame_counts(entries, pose_dir, max_length=256, cache_path=cache) == [30, 256, 20]
    saved = json.loads(cache.read_text())
    assert len(saved["clips"]) == 3
    # cached values are used while the file is unchanged ...
    key = str(pose_dir / "a.pkl")
    saved["clips"][key][0] = 31
    cache.write_text(json.dumps(saved))
    assert frame_counts(entries, pose_dir, max_length=256, cache_path=cache)[0] == 31
    # ... and re-read when it changed
    write_pose_pkl(pose_dir / "a.pkl", *_pose(12))
    os.utime(pose_dir / "a.pkl", ns=(1, 1))
    assert frame_counts(entries, pose_dir, max_length=256, cache_path=cache) == [12, 256, 20]
    assert frame_counts(entries, pose_dir, max_length=16, cache_path=cache, num_workers=2) == [12, 16, 16]


def test_frame_counts_names_a_broken_file(tmp_path):
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    entries = [LabelEntry("bad", "x", video_path="bad.mp4"), LabelEntry("missing", "y", video_path="missing.mp4")]
    with pytest.raises(DataFormatError, match="bad.pkl"):
        frame_counts(entries, tmp_path)
    assert frame_counts(entries, tmp_path, skip_errors=True) == [0, 0]
