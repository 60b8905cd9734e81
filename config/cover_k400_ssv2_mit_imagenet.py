# CoVeR (Zhang et al., "Co-training Transformer with Videos and Images Improves Action Recognition",
# arXiv:2112.07175), section 4.1 and Table 6: Kinetics-400 + Something-Something v2 + Moments in Time + ImageNet,
# fine-tuned together from image-pretrained weights.
#
#   torchrun --standalone --nproc_per_node=8 train.py config/cover_k400_ssv2_mit_imagenet.py
#   python -m tools.smoke config/cover_k400_ssv2_mit_imagenet.py     # end to end in about a minute, no data
#
# As in the paper:
# - a mini-batch of 128 (over all processes) in which "we sampled videos and images from all finetuning datasets.
#   The sampling rate is proportional to the size of the datasets": every process's batch of every step holds
#   samples of all four datasets, at least one of each, the rest in proportion to their sizes, images in the same
#   step as clips (sampling='proportional': sampling.ProportionalBatchSampler; the counts vary by about a sample
#   from step to step so that each dataset's share of all samples seen is its share of the data; start-up prints
#   the shares);
# - the weighted sum of the per-dataset losses with w_image = 0.5, w_video = 1 (Table 6's headline row), each
#   dataset's loss its mean over its samples in the step (dataset_loss='mean', below);
# - SGD with momentum 0.9, 20 epochs, lr 5e-3 dropped to 5e-4 and 5e-5 at epochs 11 and 15 (counted from 0, as a
#   step schedule's boundaries count epochs done: 11 epochs at 5e-3, 4 at 5e-4, the last 5 at 5e-5);
# - 16 frames sampled uniformly over the whole video (sampler='segments'); only random crops and horizontal flips
#   (none on SSv2, whose "left to right" / "right to left" classes a flip swaps); 1 x 3 views at test.
# Not as in the paper, and why:
# - the backbone: CoVeR fine-tunes a TimeSFormer-L (24 blocks of temporal + spatial attention, width 1024)
#   pretrained on ImageNet-21k, JFT-300M or JFT-3B (87.2% on K400 with JFT-3B). This project has no TimeSFormer
#   and no such weights; it uses its frame-wise ViT-B/16 with token shift (IV-ViT) from torchvision's ImageNet-1k
#   weights. It reproduces the training scheme, not the architecture: expect much less;
# - the resolution: 224x224 instead of 448x448, the size torchvision's ViT-B/16 weights were trained at (448 would
#   be 4x the tokens of every one of the 16 frames);
# - the crops' sizes are not given by the paper: clips use a random short side in [224, 320] then a 224 crop
#   (TimeSFormer's and IV-ViT's jitter), images the usual random-resized crop of 8-100% of the area;
# - no warm-up, weight decay or gradient clipping: the paper states none.
import os

exec(open(os.path.join(os.path.dirname(__file__), 'cover.py')).read())  # proportional sampling, one step a round

_world = int(os.environ.get('WORLD_SIZE', '1'))
if 128 % (4 * _world):
    raise ValueError(f"CoVeR's batch of 128, cut into 4 equal batch_size settings per process, needs 1, 2, 4, 8, "
                     f"16 or 32 processes, not {_world}")
out_dir = 'out/cover_k400_ssv2_mit_imagenet'
# With sampling='proportional' only the SUM of the batch sizes counts: 128 / world per process, split between the
# datasets by their sizes (on 8 GPUs, 16 per process: on average 1.5 K400 + 1.1 SSv2 + 5.1 MiT + 8.3 ImageNet,
# 1-2, 1-2, 4-6 and 7-9 in a step);
# each batch_size here is a quarter of it.
_batch = 128 // 4 // _world
_video = dict(num_frames=16, sampler='segments', batch_size=_batch)
datasets = {
    'k400': dict(format='kinetics', root='data/kinetics400', **_video),
    'ssv2': dict(format='ssv2', root='data/something-something-v2', flip=False, **_video),
    'mit': dict(format='moments', root='data/Moments_in_Time_Raw', **_video),
    'imagenet': dict(format='imagefolder', root='data/imagenet', batch_size=_batch),
}
loss_weights = {'imagenet': 0.5}                   # Table 6: w_image = 0.5, w_video = 1 (the videos' default)
# Each dataset's loss is its mean, the total sum_k w_k mean_k: "the total loss for a given batch equal to the
# weighted sum of the losses across each dataset in that batch" (CoVeR, section 1; appendix: "the weighted average
# of both image and video classification loss"). Effective weights of the per-sample means: K400 1, SSv2 1, MiT 1,
# ImageNet 0.5. (dataset_loss='share', MultiTrain's reading, would weigh each mean by its share of the step too:
# K400 0.097, SSv2 0.068, MiT 0.319, ImageNet 0.258, a total 4.7x smaller, which under SGD is a 4.7x smaller lr.)
dataset_loss = 'mean'
init_from = 'torchvision:vit_b_16'
backbone = 'vit'
img_size = 224
patch_size = 16
dim = 768
depth = 12
num_heads = 12
shift_div = 4
num_workers = 8
num_temporal_clips = 1  # 1 x 3 views at test
num_spatial_crops = 3
# SGD, momentum 0.9, lr 5e-3 for 20 epochs, x 0.1 at epochs 11 and 15. An epoch: all training samples once
# (K400 ~240k, SSv2 168k, MiT 791k as CoVeR counts them, ImageNet-1k 1,281,167) in batches of 128.
_epoch = (240_000 + 168_000 + 791_000 + 1_281_167) // 128   # 19,376 iterations
optimizer = 'sgd'
momentum = 0.9
lr = 5e-3
lr_schedule = 'step'
lr_milestones = [11 * _epoch, 15 * _epoch]
lr_factor = 0.1
max_iters = 20 * _epoch
warmup_iters = 0
weight_decay = 0.0
grad_clip = 0.0
eval_interval = 5000
eval_max_batches = 200
