# CoVeR (Zhang et al., arXiv:2112.07175): Kinetics-400 + Something-Something v2 + Moments in Time + ImageNet, each batch
# from one dataset drawn in proportion to its size, images as one-frame videos, 16 frames uniform over the whole video.
# CoVeR uses a TimeSFormer pretrained on ImageNet-21k at 448px and reports 87.2% on K400 (JFT-3B pretraining); this
# project's closest backbone is the frame-wise ViT-B/16 with token shift from torchvision's ImageNet weights, so expect
# much less: it reproduces the training scheme, not the architecture.
#
#   torchrun --standalone --nproc_per_node=8 train.py config/cover_k400_ssv2_mit_imagenet.py
import os

exec(open(os.path.join(os.path.dirname(__file__), 'cover.py')).read())  # proportional sampling, fixed weights

_world = int(os.environ.get('WORLD_SIZE', '1'))
out_dir = 'out/cover_k400_ssv2_mit_imagenet'
_video = dict(num_frames=16, sampler='segments', batch_size=4)
datasets = {
    'k400': dict(format='kinetics', root='data/kinetics400', **_video),
    'ssv2': dict(format='ssv2', root='data/something-something-v2', flip=False, **_video),
    'mit': dict(format='moments', root='data/Moments_in_Time_Raw', **_video),
    'imagenet': dict(format='imagefolder', root='data/imagenet', batch_size=64),
}
loss_weights = {}                                  # CoVeR's w_i: all 1 here; e.g. {'imagenet': 0.5}
init_from = 'torchvision:vit_b_16'
backbone, img_size, patch_size, dim, depth, num_heads, shift_div = 'vit', 224, 16, 768, 12, 12, 4
num_workers, num_spatial_crops = 8, 3              # CoVeR tests 1 x 3 views
lr = 1e-4 * _world / 8                             # stated for 8 GPUs, scaled with the number of processes
min_lr, warmup_iters, max_iters, eval_interval, eval_max_batches = lr / 100, 5000, 200_000, 5000, 200
