# "w/o Informative Loss" of MultiTrain's Table 3 (arXiv:2209.12362): cross-entropy through the added projection (eqs.
# 4-5), no variance/covariance terms. The paper reports that this run collapses (13.5% on K400).
#   python train.py config/multitrain_demo.py config/multitrain_no_informative.py --out_dir=out/mt/no_informative
sampling = 'mixed'
update = 'per_round'
projection = 'add'
projection_init = 'zeros'
var_weight = 0.0
cov_weight = 0.0
uncertainty = True
