# IV-ViT's set-up on its two publicly downloadable datasets: Tiny-ImageNet (images) + UCF101 split 1 (videos),
# a ViT-B/16 frame-wise model with token shift, from scratch (arXiv:2308.10533, section 5.3 and Table 1).
# IV-ViT trains on four datasets (adding CIFAR-100 and mini-Kinetics) and reports, from scratch,
# 23.65% top-1 on Tiny-ImageNet and 41.06% on UCF101 after 20k iterations.
#
#   python train.py config/tinyimagenet_ucf101.py
#   python -m tools.smoke config/tinyimagenet_ucf101.py     # end to end in about a minute, no data needed
#   torchrun --standalone --nproc_per_node=8 train.py config/tinyimagenet_ucf101.py   # per-GPU batches as below
#
# Data (see README): data/tiny-imagenet-200/ as unpacked from tiny-imagenet-200.zip, and data/UCF101/ holding
# UCF-101/ (from UCF101.rar) and ucfTrainTestlist/ (from UCF101TrainTestSplits-RecognitionTask.zip).
out_dir = 'out/tinyimagenet_ucf101'
datasets = {
    'tinyimagenet': dict(format='tinyimagenet', root='data/tiny-imagenet-200', batch_size=6),
    'ucf101': dict(format='ucf101', root='data/UCF101', fold=1, batch_size=6, num_frames=16, clip_seconds=2.67),
}
img_size = 224
num_workers = 6
eval_interval = 2000
eval_max_batches = 200
log_interval = 50
# ViT-B/16; 1/8 of the class token's channels shifted each way, as the IV-ViT code does with 16 frames (TokenShift's
# default is 1/4 with 8 frames), the same as config/ivvit_tinyimagenet_cifar100_ucf101_minikinetics.py
patch_size = 16
dim = 768
depth = 12
num_heads = 12
shift_div = 8
# AdamW at a constant learning rate, one step after each dataset's batch, 20k iterations (IV-ViT)
max_iters = 20000
lr = 1e-5
min_lr = 1e-5
warmup_iters = 0
weight_decay = 5e-5
grad_clip = 0.0                # the paper states no clipping
