# MultiTrain as the paper describes it ("Ours" in MultiTrain's Table 3, arXiv:2209.12362): every head on every sample
# through the projection, added to the head's own logits (eqs. 4-5), the informative loss on the expander's output (eqs.
# 2-3, weights 1), learned uncertainty weights (eq. 6), batches that mix the datasets and one step per round. An
# objective file: give it after a data set-up, with an out_dir of its own, e.g.
#   python train.py config/multitrain_demo.py config/multitrain.py --out_dir=out/mt/multitrain
# The other rows of Table 3: multitrain_vanilla.py, multitrain_no_informative.py,
# multitrain_no_informative_no_add.py, multitrain_no_projection.py; the official code's choices: multitrain_official.py.
sampling = 'mixed'
update = 'per_round'
projection = 'add'
projection_init = 'zeros'
var_weight = 1.0
cov_weight = 1.0
uncertainty = True
