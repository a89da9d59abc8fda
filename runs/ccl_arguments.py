"""The command line of train_ccl.py: train.py's flags (engine, data, DeepSpeed, resume) plus CCL-SLR's own."""
import argparse

from datasets.ccl_views import ViewSettings
from evaluation.islr_topk import parse_ks
from models.ccl_slr import OBJECTIVES, CCLConfig
from models.video_encoder import VIDEO_PRESETS
from runs.arguments import get_args_parser

CCL_DESCRIPTION = """CCL-SLR: cross-modal contrastive pre-training (pose + RGB, no labels) and ISLR fine-tuning.

  # pre-train on the training clips of one or several datasets (labels are not read)
  python train_ccl.py --ccl-stage pretrain --dataset WLASL,MSASL --output_dir out/ccl_pretrain
  # fine-tune a classifier from it (--finetune: a CCL-SLR checkpoint, or a Uni-Sign one for the pose branch)
  python train_ccl.py --ccl-stage finetune --dataset WLASL --finetune out/ccl_pretrain/best_checkpoint.pth \\
      --output_dir out/ccl_wlasl
  # or start Uni-Sign's generative ISLR fine-tuning from its pose encoder
  python train.py --task ISLR --dataset WLASL --init-pose-encoder out/ccl_pretrain/best_checkpoint.pth ...

Which choices are ours (the paper's method section is not public): docs/ccl_slr.md.
"""
DEFAULT_VIEWS = ViewSettings()
DEFAULT_MODEL = CCLConfig()


def get_ccl_args_parser() -> argparse.ArgumentParser:
    parser = get_args_parser()
    parser.description = CCL_DESCRIPTION
    group = parser.add_argument_group("CCL-SLR")
    group.add_argument("--ccl-stage", default="pretrain", choices=["pretrain", "finetune"],
                       help="contrastive pre-training (no labels) or ISLR fine-tuning with a classifier")
    group.add_argument("--modalities", default="pose,rgb",
                       help="branches: pose,rgb (default), or pose (pose-only: no videos, no cross-modal term)")
    group.add_argument("--ccl-objective", default=DEFAULT_MODEL.objective, choices=OBJECTIVES,
                       help="negatives from a momentum-key queue per modality (MoCo v2) or from the batch")
    group.add_argument("--temperature", type=float, default=DEFAULT_MODEL.temperature)
    group.add_argument("--queue-size", type=int, default=DEFAULT_MODEL.queue_size,
                       help="negatives per modality (moco); keep it below the number of training clips")
    group.add_argument("--momentum", type=float, default=DEFAULT_MODEL.momentum, help="key encoder momentum (moco)")
    group.add_argument("--embed-dim", type=int, default=DEFAULT_MODEL.embed_dim, help="projection head output")
    group.add_argument("--cross-weight", type=float, default=DEFAULT_MODEL.cross_weight,
                       help="weight of the two cross-modal InfoNCE terms (0: intra-modal only)")
    group.add_argument("--cross-warmup-epochs", type=float, default=0.0,
                       help="grow the cross-modal weight linearly from 0 over these epochs (gradual alignment)")
    group.add_argument("--spm", action=argparse.BooleanOptionalAction, default=DEFAULT_MODEL.spm,
                       help="Semantic Positive Mining: the other modality's top-k neighbours become positives")
    group.add_argument("--spm-topk", type=int, default=DEFAULT_MODEL.spm_topk)
    group.add_argument("--spm-warmup-epochs", type=float, default=0.0, help="epochs before SPM starts")
    group.add_argument("--video-preset", default="base", choices=sorted(VIDEO_PRESETS),
                       help="(2+1)D CNN widths of the RGB branch")
    group.add_argument("--video-pool-grid", type=int, default=3,
                       help="the RGB branch averages its last feature map into N x N cells, keeping where things are "
                            "(1: one global average)")
    group.add_argument("--pose-feature-dim", type=int, default=768,
                       help="pose_proj width: 768 (mT5-Base) lets the pose encoder initialise Uni-Sign's whole")
    group.add_argument("--head-dropout", type=float, default=0.1, help="fine-tuning classifier dropout")
    group.add_argument("--class-lists", default=None,
                       help="with --eval: WLASL_v0.3.json, MSASL_classes.json or a text file; score its subsets too")
    group.add_argument("--subsets", type=parse_ks, default=None,
                       help="subset sizes, e.g. 100,300 (default: the benchmark's standard ones)")

    group = parser.add_argument_group("CCL-SLR views (augmentation and Motion-Preserving Masking)")
    group.add_argument("--pose-frames", type=int, default=DEFAULT_VIEWS.pose_frames, help="frames per pose view")
    group.add_argument("--rgb-frames", type=int, default=DEFAULT_VIEWS.rgb_frames, help="frames per RGB view")
    group.add_argument("--rgb-size", type=int, default=DEFAULT_VIEWS.rgb_size, help="RGB crop side in pixels")
    group.add_argument("--temporal-crop", type=float, default=DEFAULT_VIEWS.temporal_crop,
                       help="smallest share of a clip a view keeps")
    group.add_argument("--rotation", type=float, default=DEFAULT_VIEWS.rotation_degrees, help="degrees, +-")
    group.add_argument("--shear", type=float, default=DEFAULT_VIEWS.shear)
    group.add_argument("--scale-range", type=float, nargs=2, default=DEFAULT_VIEWS.scale_range)
    group.add_argument("--joint-dropout", type=float, default=DEFAULT_VIEWS.joint_dropout)
    group.add_argument("--crop-scale", type=float, nargs=2, default=DEFAULT_VIEWS.crop_scale,
                       help="RGB random resized crop: share of the area kept")
    group.add_argument("--color-jitter", type=float, default=DEFAULT_VIEWS.color_jitter,
                       help="RGB brightness/contrast/saturation change, factors in [1 - j, 1 + j] (0: off)")
    group.add_argument("--grayscale", type=float, default=DEFAULT_VIEWS.grayscale,
                       help="probability of a grey RGB view")
    group.add_argument("--mpm-ratio", type=float, default=DEFAULT_VIEWS.mpm_ratio,
                       help="Motion-Preserving Masking: share of patches masked (0: off)")
    group.add_argument("--mpm-grid", type=int, default=DEFAULT_VIEWS.mpm_grid, help="MPM patches per side")
    parser.set_defaults(task="ISLR", label_smoothing=0.0, output_dir="out/ccl", gradient_accumulation_steps=1)
    return parser
