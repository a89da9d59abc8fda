"""CCL-SLR: cross-modal contrastive pre-training of a pose branch and an RGB branch, without labels.

Each modality has an encoder (pose: Uni-Sign's four-part ST-GCN `PoseEncoder`, mean-pooled over frames, so
its weights move to and from Uni-Sign; RGB: the (2+1)D `VideoEncoder`) and a projection head to `embed_dim`.
Two augmented views of every clip per modality give a query and a key. The loss is

    InfoNCE(pose q, pose k) + InfoNCE(rgb q, rgb k) + cross_weight * [InfoNCE(rgb q, pose k) + InfoNCE(pose q, rgb k)]

with negatives from a per-modality queue of momentum-encoded keys (objective "moco", MoCo v2) or from the
other clips of the batch (objective "in_batch", keys from the query encoders). Semantic Positive Mining (SPM)
after `spm_warmup_steps` training steps: the top-k neighbours of a clip in the *other* modality's embedding
space (its queue, or the batch) become extra positives of this modality's intra-modal loss (CrosSCLR-style;
the paper's details are not public, see docs/ccl_slr.md for what is ours).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.contrastive import info_nce, mined_positives
from models.pose_encoder import PoseEncoder, PoseEncoderConfig
from models.task_heads import masked_mean
from models.video_encoder import VideoEncoder, VideoEncoderConfig

MODALITIES = ("pose", "rgb")
OBJECTIVES = ("moco", "in_batch")
KIND = "ccl_slr"  # the "kind" entry of a CCL-SLR checkpoint


@dataclass
class CCLConfig:
    modalities: tuple = MODALITIES
    pose: dict = field(default_factory=lambda: asdict(PoseEncoderConfig()))  # PoseEncoderConfig fields
    video: dict = field(default_factory=lambda: VideoEncoderConfig().to_dict())  # VideoEncoderConfig fields
    embed_dim: int = 128
    objective: str = "moco"
    temperature: float = 0.07
    queue_size: int = 4096
    momentum: float = 0.999
    cross_weight: float = 1.0  # lambda of the cross-modal terms (0: intra-modal only)
    cross_warmup_steps: int = 0  # lambda grows linearly from 0 over these training steps ("gradual alignment")
    spm: bool = True
    spm_topk: int = 1
    spm_warmup_steps: int = 0

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, not {self.modalities}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CCLConfig":
        return cls(**values)

    def pose_config(self) -> PoseEncoderConfig:
        return PoseEncoderConfig(**{key: tuple(v) if isinstance(v, list) else v for key, v in self.pose.items()})

    def video_config(self) -> VideoEncoderConfig:
        return VideoEncoderConfig(**{key: tuple(v) if isinstance(v, list) else v for key, v in self.video.items()})


@dataclass
class CCLOutput:
    loss: torch.Tensor  # scalar: the weighted sum of `terms`
    terms: dict  # {"intra_pose", "intra_rgb", "cross_rgb_pose", "cross_pose_rgb"} (those computed), detached
    spm_active: bool


class PoseClipEncoder(nn.Module):
    """Uni-Sign's PoseEncoder, mean-pooled over the real frames: {parts, frame_mask} -> (B, output_dim)."""

    def __init__(self, config: PoseEncoderConfig):
        super().__init__()
        self.pose_encoder = PoseEncoder(config)
        self.output_dim = config.output_dim

    def forward(self, clip: dict) -> torch.Tensor:
        frames = self.pose_encoder(clip["parts"], clip["frame_mask"])  # (B, T, output_dim)
        return masked_mean(frames, clip["frame_mask"])


class ProjectionHead(nn.Sequential):
    """MoCo v2's MLP head: Linear -> ReLU -> Linear to the embedding size."""

    def __init__(self, in_dim, embed_dim):
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, embed_dim))


def build_encoder(config: CCLConfig, modality) -> nn.Module:
    return PoseClipEncoder(config.pose_config()) if modality == "pose" else VideoEncoder(config.video_config())


def encoder_width(config: CCLConfig, modality) -> int:
    return config.pose_config().output_dim if modality == "pose" else config.video_config().output_dim


def batch_size_of(inputs) -> int:
    return len(inputs["frame_mask"]) if isinstance(inputs, dict) else len(inputs)


class CCLSLR(nn.Module):
    def __init__(self, config: CCLConfig):
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({m: build_encoder(config, m) for m in config.modalities})
        self.heads = nn.ModuleDict({m: ProjectionHead(encoder_width(config, m), config.embed_dim)
                                    for m in config.modalities})
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training forward passes (SPM warm-up)
        if config.objective == "moco":
            self.key_encoders = copy.deepcopy(self.encoders).requires_grad_(False)
            self.key_heads = copy.deepcopy(self.heads).requires_grad_(False)
            for modality in config.modalities:
                queue = F.normalize(torch.randn(config.queue_size, config.embed_dim), dim=1)
                self.register_buffer(f"queue_{modality}", queue)  # (K, D) keys of earlier batches
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
            self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))  # entries written so far

    @property
    def moco(self) -> bool:
        return self.config.objective == "moco"

    def features(self, modality, inputs) -> torch.Tensor:
        """The query encoder's pooled features (B, C): what fine-tuning classifies."""
        return self.encoders[modality](inputs)

    def embed(self, modality, inputs) -> torch.Tensor:
        """L2-normalised query embeddings (B, embed_dim)."""
        return F.normalize(self.heads[modality](self.features(modality, inputs)).float(), dim=1)

    @torch.no_grad()
    def key_embed(self, modality, inputs) -> torch.Tensor:
        return F.normalize(self.key_heads[modality](self.key_encoders[modality](inputs)).float(), dim=1)

    @torch.no_grad()
    def momentum_update(self):
        """key = m * key + (1 - m) * query, for every encoder and head parameter."""
        m = self.config.momentum
        for keys, queries in ((self.key_encoders, self.encoders), (self.key_heads, self.heads)):
            for key, query in zip(keys.parameters(), queries.parameters()):
                key.mul_(m).add_(query.detach(), alpha=1 - m)

    def queue(self, modality) -> torch.Tensor:
        return getattr(self, f"queue_{modality}")

    def negatives(self, modality, dtype) -> torch.Tensor | None:
        """A copy of the modality's queue (MoCo; the queue itself changes before backward), None in-batch."""
        return self.queue(modality).detach().clone().to(dtype) if self.moco else None

    @torch.no_grad()
    def enqueue(self, keys: dict):
        """Write this batch's keys at the shared pointer (the same rows in every modality's queue), wrapping."""
        size = self.config.queue_size
        batch = len(next(iter(keys.values())))
        rows = (self.queue_ptr + torch.arange(batch, device=self.queue_ptr.device)) % size
        for modality, values in keys.items():
            self.queue(modality)[rows] = values.to(self.queue(modality).dtype)
        self.queue_ptr.copy_((self.queue_ptr + batch) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + batch, max=size))

    def check_inputs(self, views: dict):
        for modality in self.config.modalities:
            if views.get(modality) is None or len(views[modality]) != 2:
                raise ValueError(f"CCL-SLR with modalities {self.config.modalities} needs two '{modality}' views "
                                 f"per clip (query and key)")
        batch = batch_size_of(views[self.config.modalities[0]][0])
        if not self.moco and batch < 2:
            raise ValueError(f"in-batch InfoNCE needs at least 2 clips per batch for negatives, got {batch}; "
                             f"raise --batch-size or use --ccl-objective moco")
        if self.moco and batch > self.config.queue_size:
            raise ValueError(f"batch of {batch} clips is larger than the queue ({self.config.queue_size})")

    def cross_weight(self) -> float:
        """lambda, ramped up linearly over the first cross_warmup_steps training steps."""
        ramp = self.config.cross_warmup_steps
        return self.config.cross_weight * (min(1.0, int(self.steps) / ramp) if ramp > 0 else 1.0)

    def spm_active(self) -> bool:
        return (self.config.spm and len(self.config.modalities) == 2
                and int(self.steps) > self.config.spm_warmup_steps)

    def mined(self, other, queries) -> torch.Tensor:
        """SPM positives of each clip: its top-k neighbours in the other modality (queue rows, or batch keys)."""
        query = queries[other].detach()
        if not self.moco:
            return mined_positives(query, query, self.config.spm_topk, exclude_diagonal=True)
        positives = mined_positives(query, self.queue(other).to(query.dtype), self.config.spm_topk, False)
        filled = torch.arange(self.config.queue_size, device=query.device) < self.queue_filled
        return positives & filled

    def forward(self, pose=None, rgb=None) -> CCLOutput:
        """pose: [query view, key view], each {parts {p: (B, T, V, 3)}, frame_mask (B, T)};
        rgb: [query view, key view], each (B, T_rgb, 3, H, W). The modalities of the config are needed."""
        views = {"pose": pose, "rgb": rgb}
        self.check_inputs(views)
        modalities, temperature = self.config.modalities, self.config.temperature
        if self.training:
            self.steps += 1
            if self.moco:
                self.momentum_update()
        queries = {m: self.embed(m, views[m][0]) for m in modalities}
        keys = {m: self.key_embed(m, views[m][1]) if self.moco else self.embed(m, views[m][1]) for m in modalities}
        spm = self.spm_active()
        terms = {}
        for modality in modalities:
            queue = self.negatives(modality, queries[modality].dtype)
            other = next((m for m in modalities if m != modality), None)
            extra = self.mined(other, queries) if spm else None
            terms[f"intra_{modality}"] = info_nce(queries[modality], keys[modality], temperature, queue, extra)
        cross = []
        if len(modalities) == 2 and self.config.cross_weight > 0:
            for query, key in (("rgb", "pose"), ("pose", "rgb")):
                queue = self.negatives(key, queries[query].dtype)
                terms[f"cross_{query}_{key}"] = info_nce(queries[query], keys[key], temperature, queue)
                cross.append(terms[f"cross_{query}_{key}"])
        loss = sum(terms[f"intra_{m}"] for m in modalities) + self.cross_weight() * sum(cross)
        if self.training and self.moco:
            self.enqueue({m: keys[m].detach() for m in modalities})
        return CCLOutput(loss, {name: value.detach() for name, value in terms.items()}, spm)

    @classmethod
    def from_checkpoint(cls, path, device="cpu") -> "CCLSLR":
        """A CCL-SLR model from a train_ccl.py pre-training checkpoint (best_checkpoint.pth, checkpoint.pth)."""
        from utils.checkpoint import load_checkpoint_file

        state = load_checkpoint_file(path)
        check_ccl_checkpoint(state, path)
        model = cls(CCLConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        return model.to(device)


def check_ccl_checkpoint(state: dict, path):
    """CheckpointError unless `state` is a CCL-SLR pre-training checkpoint."""
    from utils.checkpoint import CheckpointError

    if state.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a CCL-SLR pre-training checkpoint (no 'kind': '{KIND}' entry); "
                         f"train_ccl.py --ccl-stage pretrain writes them")
