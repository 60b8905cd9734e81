# MultiTrain as the official code runs it: projected logits with their own cross-entropy ('separate'), projections
# initialised with std 0.02, informative weights 25 x 0.1 (variance) and 1 x 0.1 (covariance) on each micro-batch
# gathered over the GPUs, uncertainty weighting off, label smoothing 0.1, mixup 0.8 / CutMix 1.0 (each sample mixed
# with one of its own dataset, augment.py).
#   python train.py config/multitrain_demo.py config/multitrain_official.py --out_dir=out/mt/official
sampling = 'mixed'
update = 'per_round'
projection = 'separate'
projection_init = 'normal'
var_weight = 2.5
cov_weight = 0.1
uncertainty = False
informative_batch = 'micro'
label_smoothing = 0.1
mixup_alpha = 0.8
cutmix_alpha = 1.0
