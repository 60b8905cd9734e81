# CoVeR's objective (arXiv:2112.07175, sections 3.3 and 4.1): every step takes samples of every dataset, each in
# proportion to its size (sampling.ProportionalBatchSampler; a batch per sample shape, images and clips), the
# per-dataset losses, each a dataset's mean loss, summed with fixed weights (loss_weights; 1 unless named), one step
# per round.
# An objective file: give it after a data set-up, e.g.
#   python train.py config/multitrain_demo.py config/cover.py --out_dir=out/mt/cover
# (The demo's three video datasets have one shape, so this is one mixed batch per step, like
# config/multitrain_vanilla.py: with weights 1 and one sample shape, CoVeR and "Vanilla" differ only in that
# CoVeR's batch holds each dataset's share by construction, Vanilla's by chance, and that CoVeR's L_k is the mean
# over the dataset's own samples, Vanilla's its share of the batch's mean.)
sampling = 'proportional'
update = 'per_round'
projection = 'none'
var_weight = 0.0
cov_weight = 0.0
uncertainty = False
dataset_loss = 'mean'  # "the weighted sum of the losses across each dataset in that batch" (CoVeR, 1)
