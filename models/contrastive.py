"""Contrastive objectives of CCL-SLR: multi-positive InfoNCE against a negative queue or the batch, and
Semantic Positive Mining (SPM).

All embeddings are L2-normalised rows. A loss row i has logits over candidates j and a positive mask; the loss
is -sum_j mask_ij log softmax_j(logits_i) / sum_j mask_ij, averaged over rows (plain InfoNCE when one
candidate per row is positive).
"""
import torch
import torch.nn.functional as F


def multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """logits (B, N), positives (B, N) bool with >= 1 True per row -> mean multi-positive InfoNCE (scalar)."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    positives = positives.to(log_probs.dtype)
    return (-(positives * log_probs).sum(1) / positives.sum(1)).mean()


def queue_logits(queries, keys, queue, temperature):
    """MoCo logits: column 0 = the own key (the positive), then the K queue entries. -> (B, 1 + K)."""
    own = (queries * keys).sum(-1, keepdim=True)  # (B, 1)
    return torch.cat([own, queries @ queue.t()], dim=1) / temperature


def batch_logits(queries, keys, temperature):
    """In-batch logits: every sample's key is a candidate, the own key on the diagonal. -> (B, B)."""
    return queries @ keys.t() / temperature


def own_positive(batch_size, candidates, moco: bool, device) -> torch.Tensor:
    """The positive mask of plain InfoNCE: column 0 (queue logits) or the diagonal (batch logits)."""
    positives = torch.zeros(batch_size, candidates, dtype=torch.bool, device=device)
    if moco:
        positives[:, 0] = True
    else:
        positives[torch.arange(batch_size), torch.arange(batch_size)] = True
    return positives


def mined_positives(queries, candidates, k: int, exclude_diagonal: bool) -> torch.Tensor:
    """SPM: the top-k most similar `candidates` (N, D) of each query (B, D) -> (B, N) bool.

    In-batch mining excludes each sample's own key (the diagonal), which is already its positive."""
    similarity = queries @ candidates.t()  # (B, N)
    if exclude_diagonal:
        similarity = similarity.masked_fill(torch.eye(*similarity.shape, dtype=torch.bool,
                                                      device=similarity.device), float("-inf"))
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return torch.zeros_like(similarity, dtype=torch.bool).scatter_(1, top, True)


def info_nce(queries, keys, temperature, queue=None, extra_positives=None) -> torch.Tensor:
    """InfoNCE of queries (B, D) against their keys (B, D) and negatives: `queue` (K, D) (MoCo) or, without a
    queue, the batch's other keys. `extra_positives`: (B, K) or (B, B) bool of further positives (SPM)."""
    moco = queue is not None
    logits = queue_logits(queries, keys, queue, temperature) if moco else batch_logits(queries, keys, temperature)
    positives = own_positive(len(queries), logits.shape[1], moco, logits.device)
    if extra_positives is not None:
        positives[:, 1 if moco else 0:] |= extra_positives
    return multi_positive_nce(logits, positives)
