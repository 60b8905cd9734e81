# "w/o Informative Loss & w/o Projection Add" of MultiTrain's Table 3 (arXiv:2209.12362): the projected logits get their
# own cross-entropy instead of being added to the head's logits (the official code's 'separate' form), no
# variance/covariance terms: "additional projection branches on the vanilla architecture".
#   python train.py config/multitrain_demo.py config/multitrain_no_informative_no_add.py --out_dir=out/mt/no_informative_no_add
sampling = 'mixed'
update = 'per_round'
projection = 'separate'
projection_init = 'zeros'
var_weight = 0.0
cov_weight = 0.0
uncertainty = True
