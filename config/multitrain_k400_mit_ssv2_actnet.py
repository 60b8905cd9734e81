# MultiTrain's main set-up (Liang et al., arXiv:2209.12362, section 4.1, Tables 1 and 3): Kinetics-400 + Moments
# in Time + Something-Something v2 + ActivityNet, the 24-block MViTv2 backbone, batches mixing the four datasets.
# The paper reports 81.9 (K400) / 41.7 (MiT) / 68.9 (SSv2) / 87.4 (ActNet) top-1 (Table 3, "MultiTrain"),
# starting from a K400-trained checkpoint (see the end of this file); from scratch, expect less. The release's
# recipe (augmentation, batch, heads) as in config/k400_mit.py, whose comments say where each value comes from.
#
#   torchrun --standalone --nproc_per_node=8 train.py config/multitrain_k400_mit_ssv2_actnet.py
#   python -m tools.smoke config/multitrain_k400_mit_ssv2_actnet.py    # end to end in about a minute
#   ... config/multitrain_k400_mit_ssv2_actnet.py config/multitrain_vanilla.py --out_dir=out/mt4_vanilla  # a Table 3 row
import os

exec(open(os.path.join(os.path.dirname(__file__), 'multitrain.py')).read())  # the MultiTrain objective switches

_world = int(os.environ.get('WORLD_SIZE', '1'))  # torchrun sets it
out_dir = 'out/multitrain_k400_mit_ssv2_actnet'
# the release's augmentation, every frame of a clip alike: RandAugment, relative resized crops, erasing, and 2
# samples of each loaded clip (batch_size counts loaded clips); no colour jitter (see config/k400_mit.py)
_augment = dict(rand_augment='rand-m7-n4-mstd0.5-inc1', aug_interpolation='bicubic', resized_crop=True,
                crop_scale=(0.08, 1.0), crop_aspect=(0.75, 1.3333), random_erasing=0.25, repeated_aug=2)
# One micro-batch of 4 x 1 = 4 clips (8 samples) per GPU mixing the four datasets (sampling='mixed'): its make-up
# is random, each clip drawn from a dataset in proportion to its size (on average 0.8 K400, 2.3 MiT, 0.5 SSv2,
# 0.3 ActivityNet clips), not 1 of each.
_video = dict(num_frames=32, batch_size=1, **_augment)
_stride = dict(sampler='stride', frame_stride=3)  # 32 frames at sampling rate 3 (K400, MiT, ActivityNet)
datasets = {
    # test views as the release's README runs them (spatial x temporal): Kinetics 1 x 5, Moments in Time 3 x 2,
    # SSv2 3 x 1; ActivityNet has none there: the run's 1 x 1
    'k400': dict(format='kinetics', root='data/kinetics400', num_spatial_crops=1, num_temporal_clips=5,
                 **_video, **_stride),
    'mit': dict(format='moments', root='data/Moments_in_Time_Raw', num_spatial_crops=3, num_temporal_clips=2,
                **_video, **_stride),
    'ssv2': dict(format='ssv2', root='data/something-something-v2', sampler='segments', flip=False,
                 num_spatial_crops=3, num_temporal_clips=1, **_video),
    # each annotated segment cut into clips of <= 10 s, the samples (107K for training in the paper)
    'actnet': dict(format='activitynet', root='data/activitynet', clip_len=10, **_video, **_stride),
}
backbone = 'mvit'
mvit_preset = 'multitrain'
img_size = 224
head = 'mlp'
drop_path = 0.1
head_hidden = 2048  # the release's
head_dropout = 0.5
head_output_dropout = True
position_decay = True
expander_hidden = 4096
expander_out = 768
label_smoothing = 0.1
num_workers = 8
# 512 clips (1024 samples) per step at AdamW lr 2e-4, the release's, by accumulating 512 / (4 x GPUs) micro-batches
# (16 on 8 GPUs; on fewer GPUs the step stays, only the time grows); the informative loss's statistics per
# micro-batch gathered over the GPUs, as the release computes them ('step': over the whole step)
_clips = 4  # per GPU and micro-batch, the sum of the batch sizes above
if 512 % (_clips * _world):
    raise ValueError(f"512 clips a step in micro-batches of {_clips} per GPU needs a number of GPUs that divides "
                     f"128, not {_world}")
grad_accum = 512 // (_clips * _world)
informative_batch = 'micro'
lr = 2e-4
min_lr = 2e-6
weight_decay = 0.05
mixup_alpha = 0.8             # the official recipe, within each dataset (augment.py)
cutmix_alpha = 1.0
# 50 epochs of the four training sets as the paper counts them (K400 ~240k, MiT 727k, SSv2 168k, ActivityNet 107k
# 10-second clips), 10 of warm-up
_epoch = (240_000 + 727_000 + 168_000 + 107_000) // 512
max_iters = 50 * _epoch
warmup_iters = 10 * _epoch
eval_interval = _epoch
eval_max_batches = 200
# Table 3 starts from a K400 checkpoint: --init_from=path/to/k400/ckpt.pt (the fine-tune initialisation)
