# Tiny-ImageNet-200 alone, fine-tuned from torchvision's ImageNet-1k ViT-B/16 (init_from='torchvision:vit_b_16':
# the backbone's weights, a new head), at IV-ViT's input size: the 64x64 images upsampled to 224x224.
#
#   python train.py config/tinyimagenet_vit_b16.py                 # one GPU; torchvision downloads the weights once
#   torchrun --standalone --nproc_per_node=8 train.py config/tinyimagenet_vit_b16.py   # batch_size is per GPU
#   python eval.py config/tinyimagenet_vit_b16.py
#
# Aims at: IV-ViT's 83.22% top-1 on Tiny-ImageNet (arXiv:2308.10533, Table 1), a ViT-B/16 pretrained on Kinetics-400
# and co-trained on four datasets. Not the same set-up: these weights come from ImageNet-1k, whose images
# Tiny-ImageNet's were drawn from, so this is an easier transfer than the paper's. Not run here (no GPU, and the
# build machines cannot download weights); the settings are a common fine-tuning recipe, not tuned.
# Data: data/tiny-imagenet-200/ as unzipped from tiny-imagenet-200.zip (README, Real data).
out_dir = 'out/tinyimagenet_vit_b16'
datasets = {
    'tinyimagenet': dict(format='tinyimagenet', root='data/tiny-imagenet-200', batch_size=64),
}
init_from = 'torchvision:vit_b_16'
img_size = 224                 # IV-ViT: every crop resized to 224x224, as the pretrained weights expect
num_workers = 8
eval_interval = 1000
log_interval = 50
# ViT-B/16, the shape of the pretrained weights; token shift does nothing to images
patch_size = 16
dim = 768
depth = 12
num_heads = 12
drop_path = 0.1
# 10k steps of 64 images: 6.4 epochs of the 100k training images
max_iters = 10000
lr = 1e-4
min_lr = 1e-6
warmup_iters = 500
weight_decay = 0.05
label_smoothing = 0.1
