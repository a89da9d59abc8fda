"""Table 7 task-specific heads: MLP (ISLR) and BiLSTM + CTC (CSLR) shapes, losses, greedy CTC decoding."""
import pytest
import torch

from datasets.targets import IGNORE_INDEX
from models.task_heads import (CTCHead, MLPClassificationHead, TaskHeadModel, Vocabulary, VocabularyTargets,
                               ctc_greedy_decode, masked_mean)
from tests.conftest import random_parts


def test_masked_mean_ignores_padding():
    features = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_mean(features, torch.tensor([[1, 1, 0]])).item() == pytest.approx(2.0)


def test_mlp_head_shapes_and_loss_falls():
    torch.manual_seed(0)
    head = MLPClassificationHead(16, 5, hidden_dim=32, dropout=0.0)
    features, mask = torch.randn(6, 7, 16), torch.ones(6, 7, dtype=torch.long)
    mask[0, 4:] = 0
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    assert head(features, mask).shape == (6, 5)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head.loss(head(features, mask), labels).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss = head.loss(head(features, mask), labels)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_ctc_head_shapes_and_loss_falls():
    torch.manual_seed(0)
    head = CTCHead(8, vocab_size=6, hidden_dim=16, dropout=0.0)
    features = torch.randn(3, 12, 8)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 9:] = 0
    log_probs, lengths = head(features, mask)
    assert log_probs.shape == (3, 12, 6) and lengths.tolist() == [12, 9, 12]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 12), atol=1e-5)
    targets = torch.tensor([[2, 3, 4], [5, 5, 0], [2, 0, 0]])
    target_lengths = torch.tensor([3, 2, 1])
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head.loss(log_probs, lengths, targets, target_lengths).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = head.loss(*head(features, mask), targets, target_lengths)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    decoded = ctc_greedy_decode(*head(features, mask))
    assert decoded == [[2, 3, 4], [5, 5], [2]]


def test_ctc_greedy_decode_collapses_repeats_and_blanks():
    # frame arg-max paths (0 = blank); the 4th row's padding (beyond length 4) must be ignored
    paths = [[1, 1, 0, 1, 2, 2, 0, 0],  # 1 1 _ 1 2 2 _ _ -> 1 1 2
             [0, 0, 0, 0, 0, 0, 0, 0],  # all blank -> []
             [3, 3, 3, 3, 3, 3, 3, 3],  # one long token -> 3
             [2, 0, 2, 2, 4, 4, 4, 4]]  # length 4: 2 _ 2 2 -> 2 2
    log_probs = torch.full((4, 8, 5), -10.0)
    for row, path in enumerate(paths):
        for frame, token in enumerate(path):
            log_probs[row, frame, token] = 0.0
    assert ctc_greedy_decode(log_probs, [8, 8, 8, 4]) == [[1, 1, 2], [], [3], [2, 2]]


def test_vocabularies():
    classes = Vocabulary(["dog", "cat", "dog"])
    assert classes.itos == ["cat", "dog"] and classes.encode("cow") == -100
    glosses = Vocabulary("I GO STORE I".split(), ctc=True)
    assert glosses.itos[:2] == ["<blank>", "<unk>"] and glosses.encode("HOME") == 1
    assert Vocabulary.from_dict(glosses.to_dict()).itos == glosses.itos


@pytest.mark.parametrize("task,features,point", [("ISLR", "sign", "pre_proj"), ("ISLR", "lm_enc", "pre_proj"),
                                                 ("CSLR", "sign", "post_proj"), ("CSLR", "lm_enc", "pre_proj")])
def test_task_head_model_on_uni_sign(tiny_model, task, features, point):
    torch.manual_seed(0)
    targets = ["hello", "world"] if task == "ISLR" else ["I GO", "STORE GO I"]
    tokens = targets if task == "ISLR" else [t for text in targets for t in text.split()]
    vocab = Vocabulary(tokens, ctc=task == "CSLR")
    model = TaskHeadModel(tiny_model, task, features, vocab, point, hidden_dim=16, dropout=0.0)
    parts, mask = random_parts(2, 10)
    mask[1, 7:] = 0
    sequence = model.sign_features(parts, mask)
    pose = tiny_model.pose_encoder
    expected = pose.pose_proj.in_features if (features, point) == ("sign", "pre_proj") else pose.pose_proj.out_features
    assert sequence.shape == (2, 10, expected)
    labels = model.target_encoder(targets)  # what the collate adds to a batch
    assert model(parts, mask).loss is None
    output = model(parts, mask, labels)
    assert output.loss.ndim == 0 and torch.isfinite(output.loss)
    output.loss.backward()
    assert any(p.grad is not None for p in tiny_model.pose_encoder.parameters())
    predictions = model.predict(parts, mask)
    assert len(predictions) == 2 and all(isinstance(p, str) for p in predictions)


def test_target_encoders_give_class_ids_or_gloss_ids_padded_with_the_ignore_index():
    classes = VocabularyTargets(Vocabulary(["cat", "dog"]))
    assert classes(["dog", "cow", "cat"]).tolist() == [1, IGNORE_INDEX, 0]
    glosses = VocabularyTargets(Vocabulary("I GO STORE".split(), ctc=True))  # <blank> <unk> GO I STORE
    assert glosses(["I GO", "STORE", "HOME I GO"]).tolist() == [[3, 2, -100], [4, -100, -100], [1, 3, 2]]


def test_ctc_loss_reads_the_target_lengths_from_the_padding(tiny_model):
    vocab = Vocabulary("I GO STORE".split(), ctc=True)
    model = TaskHeadModel(tiny_model, "CSLR", "sign", vocab, hidden_dim=16, dropout=0.0).eval()
    parts, mask = random_parts(2, 10)
    output = model(parts, mask, model.target_encoder(["I GO STORE", "GO"]))
    targets, target_lengths = torch.tensor([[3, 2, 4], [2, 0, 0]]), torch.tensor([3, 1])
    expected = model.head.loss(output.logits, output.lengths, targets, target_lengths)
    torch.testing.assert_close(output.loss, expected)


def test_task_head_model_rejects_slt(tiny_model):
    with pytest.raises(ValueError):
        TaskHeadModel(tiny_model, "SLT", "sign", Vocabulary(["a"]))
