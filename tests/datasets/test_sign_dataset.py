"""datasets/sign_dataset.py: samples, batches and the batches a loop sees on its device."""
import torch

from datasets.sign_dataset import DeviceBatches, batch_collator, collate_samples, model_inputs
from tests.conftest import random_parts


def sample(name, frames, seed):
    parts, _ = random_parts(1, frames, seed=seed)
    return {"name": name, "parts": {part: values[0] for part, values in parts.items()}, "frame_numbers": None,
            "target": f"text {name}", "lang": None}


def test_a_batch_holds_what_the_model_and_the_prediction_files_read():
    batch = collate_samples([sample("a", 5, 0), None, sample("b", 3, 1)])
    assert set(batch) == {"names", "parts", "frame_mask", "targets", "langs", "skipped"}
    assert (batch["names"], batch["targets"], batch["skipped"]) == (["a", "b"], ["text a", "text b"], 1)
    assert batch["frame_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]


def test_the_collate_adds_the_labels_of_the_models_target_encoder():
    def encoder(texts):  # stands for UniSign.target_encoder (datasets/targets.py)
        return torch.tensor([[len(text), ord(text[-1])] for text in texts])

    batch = collate_samples([sample("a", 2, 0), sample("bb", 4, 1)], target_encoder=encoder)
    assert batch["labels"].tolist() == [[6, ord("a")], [7, ord("b")]]
    assert batch_collator(encoder)([sample("a", 2, 0)])["labels"].tolist() == [[6, ord("a")]]
    moved = next(iter(DeviceBatches([batch], torch.device("cpu"))))
    assert torch.equal(moved["labels"], batch["labels"])
    assert set(model_inputs(moved)) == {"parts", "frame_mask", "rgb", "langs"}


def test_device_batches_leave_out_empty_batches_but_count_their_position_and_samples():
    loader = [collate_samples([sample("a", 4, 0)]), collate_samples([None, None]), collate_samples([None, sample("b", 2, 1)])]
    counts = {"batch": 10, "skipped": 1}  # carried over from earlier epochs, as train_one_epoch's progress state
    batches = DeviceBatches(loader, torch.device("cpu"), counts=counts)
    assert [batch["names"] for batch in batches] == [["a"], ["b"]]
    assert counts == {"batch": 13, "skipped": 4} and batches.skipped == 4
