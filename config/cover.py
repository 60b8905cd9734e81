# CoVeR's objective (Zhang et al., arXiv:2112.07175, section 3.3): each batch from one dataset drawn with probability
# proportional to its size, the per-dataset losses summed with fixed weights (loss_weights; 1 unless named), one step
# per round. An objective file: give it after a data set-up, e.g.
#   python train.py config/multitrain_demo.py config/cover.py --out_dir=out/mt/cover
sampling = 'proportional'
update = 'per_round'
projection = 'none'
var_weight = 0.0
cov_weight = 0.0
uncertainty = False
