"""The composed Uni-Sign model: prompt + pose features into MT5, one generative objective."""
import pytest
import torch
import torch.nn.functional as F
from conftest import random_parts

from datasets.targets import IGNORE_INDEX


def test_encoder_input_is_prompt_then_frames(tiny_model):
    parts, mask = random_parts(2, 9)
    mask[1, 6:] = 0  # the second clip has 6 real frames
    embeds, attention = tiny_model.encoder_inputs(parts, mask)
    prompt_length = len(tiny_model.prompt_ids)
    assert tiny_model.prompt_ids[-1].item() == tiny_model.tokenizer.eos_token_id  # the prompt ends with </s>
    assert embeds.shape == (2, prompt_length + 9, tiny_model.mt5_model.config.d_model)
    assert attention[:, :prompt_length].all()
    assert attention[1, prompt_length + 6:].sum() == 0  # padded frames are masked out of the LM


def test_padded_frames_never_reach_the_language_model(tiny_model):
    tiny_model.eval()
    parts, mask = random_parts(1, 8)
    mask[0, 5:] = 0
    labels = tiny_model.tokenize_targets(["hello"])
    loss = tiny_model(parts, mask, labels).loss
    changed = {name: values.clone() for name, values in parts.items()}
    original_embeds, _ = tiny_model.encoder_inputs(parts, mask)
    # Change what the LM sees at padded positions only (after the pose encoder).
    original_encoder = tiny_model.pose_encoder.forward

    def noisy_padding(*args, **kwargs):
        features = original_encoder(*args, **kwargs)
        return torch.cat([features[:, :5], torch.randn_like(features[:, 5:]) * 100], dim=1)

    tiny_model.pose_encoder.forward = noisy_padding
    torch.testing.assert_close(tiny_model(changed, mask, labels).loss, loss)


def test_loss_is_label_smoothed_token_mean(tiny_model):
    parts, mask = random_parts(2, 5)
    labels = tiny_model.tokenize_targets(["hello world", "go"])
    output = tiny_model(parts, mask, labels)
    assert labels.shape[0] == 2 and (labels == IGNORE_INDEX).any()
    expected = F.cross_entropy(output.logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                               label_smoothing=0.2)
    torch.testing.assert_close(output.loss, expected)


def test_the_loss_comes_only_with_labels(tiny_model):
    """As in Hugging Face models: labels give logits and loss; decoder_input_ids alone give logits only."""
    tiny_model.eval()
    parts, mask = random_parts(2, 5)
    labels = tiny_model.tokenize_targets(["hello world", "go"])
    with_labels = tiny_model(parts, mask, labels)
    without = tiny_model(parts, mask, decoder_input_ids=tiny_model.mt5_model._shift_right(labels))
    assert without.loss is None and with_labels.loss is not None
    torch.testing.assert_close(without.logits, with_labels.logits)
    with pytest.raises(ValueError, match="labels"):
        tiny_model(parts, mask)


def test_targets_are_truncated_to_50_tokens_ending_with_eos(tiny_model):
    labels = tiny_model.tokenize_targets(["store " * 80])
    assert labels.shape[1] == 50 and labels[0, -1].item() == tiny_model.tokenizer.eos_token_id


def test_generation_is_deterministic(tiny_model):
    tiny_model.eval()
    parts, mask = random_parts(2, 6)
    first = tiny_model.generate(parts, mask, max_new_tokens=8)
    assert first == tiny_model.generate(parts, mask, max_new_tokens=8)
    assert len(first) == 2 and all(isinstance(text, str) for text in first)


def test_k_best_and_closed_set_ranking(tiny_model):
    tiny_model.eval()
    parts, mask = random_parts(2, 6)
    ranked = tiny_model.generate(parts, mask, max_new_tokens=5, num_return_sequences=3)
    assert len(ranked) == 2 and len(ranked[0]) == 3
    scores = [score for _, score in ranked[0]]
    assert scores == sorted(scores, reverse=True)
    candidates = ["hello", "world", "store"]
    table = tiny_model.score_candidates(parts, mask, candidates, chunk_size=2)
    assert table.shape == (2, 3) and (table < 0).all()
    labels = tiny_model.tokenize_targets(["world"])
    logits = tiny_model.mt5_model(inputs_embeds=tiny_model.encoder_inputs(parts, mask)[0][:1],
                                  decoder_input_ids=tiny_model.mt5_model._shift_right(labels)).logits
    expected = logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).sum()
    torch.testing.assert_close(table[0, 1], expected, rtol=1e-4, atol=1e-4)


def test_a_few_steps_reduce_the_loss(tiny_model):
    torch.manual_seed(0)
    parts, mask = random_parts(4, 6)
    targets = ["hello world", "go", "store", "hello"]
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-3)
    tiny_model.train()
    losses = []
    labels = tiny_model.tokenize_targets(targets)
    for _ in range(15):
        loss = tiny_model(parts, mask, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_one_encoder_pass_evaluation_equals_forward_then_generate(tiny_model):
    """engine.evaluate's evaluate_batch gives the official two-pass loss and beams exactly, from one encoder pass."""
    torch.manual_seed(0)
    parts, mask = random_parts(4, 7)
    mask[2, 4:] = 0
    labels = tiny_model.tokenize_targets(["hello world", "go", "store", "hello"])
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-3)
    tiny_model.train()
    for _ in range(30):  # learn the targets, so that the four beams differ
        loss = tiny_model(parts, mask, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tiny_model.eval()
    calls = []
    tiny_model.pose_encoder.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        loss = tiny_model(parts, mask, labels).loss
        beams = tiny_model.generate(parts, mask, num_beams=4, max_new_tokens=8)
    calls.clear()
    output, texts = tiny_model.evaluate_batch(parts, mask, labels, num_beams=4, max_new_tokens=8)
    assert len(calls) == 1  # the pose encoder ran once
    assert output.loss.item() == loss.item() and texts == beams
    assert len(set(beams)) > 1
    langs = ["English", "Chinese", "English", "Chinese"]  # per-sample prompts (mixed corpora)
    with torch.no_grad():
        mixed = tiny_model(parts, mask, labels, langs=langs).loss
        mixed_beams = tiny_model.generate(parts, mask, num_beams=4, max_new_tokens=8, langs=langs)
    output, texts = tiny_model.evaluate_batch(parts, mask, labels, num_beams=4, max_new_tokens=8, langs=langs)
    assert output.loss.item() == mixed.item() and texts == mixed_beams


def test_the_chunked_loss_equals_the_full_loss_and_its_gradients(tiny_model):
    """loss_chunk_tokens > 0 (the memory-lean loss): the same loss and gradients, without the full logits."""
    parts, mask = random_parts(3, 6, seed=2)
    labels = tiny_model.tokenize_targets(["hello world", "go", "I will go to the store today."])
    tiny_model.eval()  # no dropout: both passes see the same network
    full = tiny_model(parts, mask, labels)
    full.loss.backward()
    expected = {name: p.grad.clone() for name, p in tiny_model.named_parameters() if p.grad is not None}
    for chunk in (1, 7):
        tiny_model.zero_grad()
        tiny_model.loss_chunk_tokens = chunk
        lean = tiny_model(parts, mask, labels)
        assert lean.logits is None
        torch.testing.assert_close(lean.loss, full.loss, rtol=1e-6, atol=1e-6)
        lean.loss.backward()
        for name, gradient in expected.items():
            torch.testing.assert_close(dict(tiny_model.named_parameters())[name].grad, gradient, rtol=1e-4,
                                       atol=1e-6, msg=name)
    tiny_model.loss_chunk_tokens = 0
