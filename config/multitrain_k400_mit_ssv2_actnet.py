# MultiTrain's main set-up (Liang et al., arXiv:2209.12362, section 4.1, Tables 1 and 3): Kinetics-400 + Moments
# in Time + Something-Something v2 + ActivityNet, the 24-block MViTv2 backbone, batches mixing the four datasets.
# The paper reports 81.9 (K400) / 41.7 (MiT) / 68.9 (SSv2) / 87.4 (ActNet) top-1 (Table 3, "MultiTrain"),
# starting from a K400-trained checkpoint; from scratch as here, expect less.
#
#   torchrun --standalone --nproc_per_node=8 train.py config/multitrain_k400_mit_ssv2_actnet.py
#   python -m tools.smoke config/multitrain_k400_mit_ssv2_actnet.py    # end to end in about a minute
#   ... config/multitrain_k400_mit_ssv2_actnet.py config/multitrain_vanilla.py --out_dir=out/mt4_vanilla  # a Table 3 row
import os

exec(open(os.path.join(os.path.dirname(__file__), 'multitrain.py')).read())  # the MultiTrain objective switches

_world = int(os.environ.get('WORLD_SIZE', '1'))  # torchrun sets it
out_dir = 'out/multitrain_k400_mit_ssv2_actnet'
# One batch of 4 x 2 = 8 clips per GPU mixing the four datasets (sampling='mixed'): its make-up is random, each
# clip drawn from a dataset in proportion to its size (on average 1.5 K400, 4.7 MiT, 1.1 SSv2, 0.7 ActivityNet
# clips), not 2 of each.
_video = dict(num_frames=32, batch_size=2)
_stride = dict(sampler='stride', frame_stride=3)  # 32 frames at sampling rate 3 (K400, MiT, ActivityNet)
datasets = {
    'k400': dict(format='kinetics', root='data/kinetics400', **_video, **_stride),
    'mit': dict(format='moments', root='data/Moments_in_Time_Raw', **_video, **_stride),
    'ssv2': dict(format='ssv2', root='data/something-something-v2', sampler='segments', flip=False, **_video),
    # each annotated segment cut into clips of <= 10 s, the samples (107K for training in the paper)
    'actnet': dict(format='activitynet', root='data/activitynet', clip_len=10, **_video, **_stride),
}
backbone, mvit_preset, img_size, head, drop_path = 'mvit', 'multitrain', 224, 'mlp', 0.1
expander_hidden, expander_out, label_smoothing = 4096, 768, 0.1
num_workers = 8
_global_batch = 8 * _world
lr = 2e-4 * _global_batch / 64                   # the official 2e-4 per 64 clips, scaled with the global batch
min_lr = lr / 100
weight_decay = 0.05
mixup_alpha, cutmix_alpha = 0.8, 1.0             # the official recipe, within each dataset (mixup.py)
# 50 epochs of the four training sets as the paper counts them (K400 ~240k, MiT 727k, SSv2 168k, ActivityNet 107k
# 10-second clips)
max_iters = 50 * (240_000 + 727_000 + 168_000 + 107_000) // _global_batch
warmup_iters = max_iters // 5
eval_interval, eval_max_batches = 5000, 200
