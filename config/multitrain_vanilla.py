# "Vanilla" of MultiTrain's Table 3 (arXiv:2209.12362): one head per dataset on a shared backbone, cross-entropy only,
# with the same mixed batches and steps as MultiTrain (config/multitrain.py), so that only the objective differs.
#   python train.py config/multitrain_demo.py config/multitrain_vanilla.py --out_dir=out/mt/vanilla
sampling = 'mixed'
update = 'per_round'
projection = 'none'
var_weight = 0.0
cov_weight = 0.0
uncertainty = False
