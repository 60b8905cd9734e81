"""
Training objectives.

The supervised term first: each dataset's head is trained with cross-entropy on that dataset's own labels
(IV-ViT, CoVeR), and CoVeR adds the per-dataset losses with fixed weights. Then the MultiTrain terms
(MultiTrain: Liang et al., arXiv:2209.12362, section 3.2), each a small function or module next to its equation:

    informative loss   variance_loss (eq. 2) + covariance_loss (eq. 3) on an Expander's output
    projection loss    Projection: every head's logits help train every other head (eqs. 4-5)
    weighting          UncertaintyWeighting: learned per-dataset weights (eq. 6)

Where the official release differs from the paper, a one-line note says how; the paper's form is the default.
"""

import math
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from model import Mlp


def cross_entropy(logits, targets, label_smoothing=0.0, reduction='mean'):
    """Cross-entropy of (B, C) logits against (B,) class indices, computed in fp32 under autocast: the mean, or
    with reduction='none' the (B,) per-sample losses."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing, reduction=reduction)


def cover_weighted_sum(losses, weights):
    """CoVeR's objective (Zhang et al., arXiv:2112.07175, section 3.3.1): sum_i w^i * l^i with fixed weights.

    losses and weights are dicts keyed by dataset name; a dataset absent from this step's losses simply adds
    nothing, but every loss must have a weight, so a typo in a config cannot silently drop a dataset."""
    missing = sorted(set(losses) - set(weights))
    if missing:
        raise KeyError(f'cover_weighted_sum: no weight for dataset(s) {missing}; '
                       f'weights are given for {sorted(weights)}')
    return sum(weights[name] * loss for name, loss in losses.items())


# -----------------------------------------------------------------------------
# Informative loss (eqs. 2-3): keep the embedding from collapsing when heads of different datasets pull on it

def _at_least_fp32(z):
    """Batch statistics in bf16/fp16 are too coarse (the hinge sits at std = 1); float64 stays float64."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def _check_batch(z, who):
    # the unbiased (B - 1) statistics below are undefined for a single sample: say so instead of returning nan
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f'{who}: expected a (B, D) embedding with B >= 2, got shape {tuple(z.shape)}')


def variance_loss(z, eps=1e-4):
    """Hinge on the per-dimension standard deviation over the batch: pushes every dimension's std up to 1.

    z: (B, D). Returns mean_j relu(1 - sqrt(var_j + eps)) with the unbiased (B - 1) variance, as in VICReg and
    the official code. The printed eq. 2 divides by (d - 1), the number of dimensions, where the batch size
    (n - 1) is meant (the text and eq. 3 average over the batch), and puts eps outside the square root, where
    it no longer protects the gradient of sqrt at var = 0, its whole purpose."""
    _check_batch(z, 'variance_loss')
    z = _at_least_fp32(z)
    std = torch.sqrt(z.var(dim=0, correction=1) + eps)  # (D,)
    return F.relu(1.0 - std).mean()                      # eq. 2 (VICReg / official-code form)


def covariance_loss(z):
    """Sum of squared off-diagonal entries of the batch covariance, divided by D: decorrelates the dimensions,
    so that the variance term cannot be satisfied by D copies of one informative feature.

    z: (B, D). The diagonal (the variances) is left to variance_loss."""
    _check_batch(z, 'covariance_loss')
    z = _at_least_fp32(z)
    B, D = z.shape
    z = z - z.mean(dim=0)                               # (B, D), centred per dimension
    cov = z.T @ z / (B - 1)                             # (D, D), eq. 3, first line
    off_diagonal = cov - torch.diag_embed(cov.diagonal())  # (D, D) with an exactly zero diagonal
    return off_diagonal.pow(2).sum() / D                # eq. 3, second line


# The expander: the two-layer MLP that maps backbone features Z (B, dim) to Z' (B, out), on which the informative
# loss is computed; used only in training. Official sizes: 768 -> 4096 -> 768 with GELU and no batch norm (a batch
# norm would standardise the very batch statistics the loss is meant to shape). The same module as the ViT's MLP.
Expander = Mlp


# -----------------------------------------------------------------------------
# Projection loss (eqs. 4-5): every head runs on every sample, and a learned linear map W_ik turns dataset i's
# logits into evidence for dataset k's classes ('clean and jerk' in Kinetics is also 'weightlifting' in MiT)

class Projection(nn.Module):
    """One bias-free Linear(C_i, C_k) per ordered pair of datasets i != k, applied to raw logits (no softmax).

    mode 'add' (paper, eqs. 4-5): Y'_k = Y_k + sum_{i != k} W_ik Y_i, cross-entropy of Y'_k with k's labels.
    mode 'separate' (official code): CE(Y_k) + mean over i != k of CE(W_ik Y_i), each against k's labels; the
    paper's ablation reports that adding without the informative loss does not converge.
    init 'zeros' starts as plain per-head cross-entropy; 'normal' (std 0.02) is the official choice."""

    def __init__(self, num_classes, mode='add', init='zeros'):
        super().__init__()
        self.num_classes = dict(num_classes)
        self.mode = mode
        self.proj = nn.ModuleDict({f'{i}->{k}': nn.Linear(c_i, c_k, bias=False)  # weight (C_k, C_i)
                                   for i, c_i in num_classes.items()
                                   for k, c_k in num_classes.items() if i != k})
        for layer in self.proj.values():
            if init == 'normal':
                # official: a truncated normal with std 0.02; cut off at torch's default +-2 (absolute, i.e.
                # 100 std), that is a plain normal in practice
                nn.init.normal_(layer.weight, std=0.02)
            else:
                nn.init.zeros_(layer.weight)

    def sources(self, target_dataset):
        """The datasets whose logits are projected onto target_dataset's classes: every other one."""
        return [i for i in self.num_classes if i != target_dataset]

    def projected(self, logits, target_dataset):
        """[W_ik Y_i for every source i], each (B, C_k); logits must hold every head's output on these samples."""
        missing = [i for i in self.sources(target_dataset) if i not in logits]
        if missing:
            raise KeyError(f'Projection onto {target_dataset!r} needs the logits of every head; missing {missing}')
        return [self.proj[f'{i}->{target_dataset}'](logits[i]) for i in self.sources(target_dataset)]

    def project(self, logits, target_dataset):
        """Y'_k of eq. 4, (B, C_k): the target head's logits plus every other head's projected logits."""
        return logits[target_dataset] + sum(self.projected(logits, target_dataset))  # eq. 4

    def loss(self, logits, target_dataset, targets, label_smoothing=0.0, reduction='mean'):
        """The projection loss L_k for samples of target_dataset with labels targets (B,): the mean, or with
        reduction='none' the (B,) per-sample losses."""
        if self.mode == 'add':
            # eq. 5 writes log(Y'_k); Y'_k are logits, so the softmax is implied: ordinary cross-entropy
            return cross_entropy(self.project(logits, target_dataset), targets, label_smoothing, reduction)  # eq. 5
        # official code: the projected logits are never added to Y_k; each gets its own cross-entropy
        own = cross_entropy(logits[target_dataset], targets, label_smoothing, reduction)
        projected = [cross_entropy(y, targets, label_smoothing, reduction)
                     for y in self.projected(logits, target_dataset)]
        return own + sum(projected) / max(len(projected), 1)  # a single dataset has no sources: plain CE

    @torch.no_grad()
    def top_pairs(self, source, target, k=5):
        """The k largest weights of W_source->target as [(source class, target class, weight)], largest first:
        which classes of `source` the model learned to read as evidence for which classes of `target`
        (MultiTrain, Table 4)."""
        weight = self.proj[f'{source}->{target}'].weight  # (C_target, C_source)
        values, flat = weight.flatten().topk(min(k, weight.numel()))  # (k,), indices into C_target * C_source
        t, s = flat // weight.shape[1], flat % weight.shape[1]
        return [(int(si), int(ti), float(v)) for si, ti, v in zip(s, t, values)]


# -----------------------------------------------------------------------------
# Uncertainty weighting (eq. 6, Kendall et al.): learn each dataset's loss weight instead of tuning it

class UncertaintyWeighting(nn.Module):
    """sum_k L_k / (2 sigma_k^2) + log sigma_k with one learnable sigma_k per dataset.

    We learn s_k = log sigma_k^2: then the weight exp(-s_k) is positive for every s_k, with no division by a
    parameter that could reach zero. init 'zeros' starts at sigma_k = 1; 'official' draws sigma_k^2 uniformly
    from [0.2, 1], as the official release does (which keeps sigma^2 itself, never hands it to the optimizer, and
    ships with the weighting off). For a fixed L_k the objective is minimised at s_k = log L_k: a dataset with a
    larger loss is down-weighted, at the price of log sigma_k."""

    def __init__(self, names, init='zeros'):
        super().__init__()
        start = {name: torch.zeros(()) for name in names}                          # s_k = 0: sigma_k^2 = 1
        if init == 'official':
            start = {name: torch.empty(()).uniform_(0.2, 1.0).log() for name in names}  # sigma_k^2 ~ U(0.2, 1)
        self.log_var = nn.ParameterDict({name: nn.Parameter(s) for name, s in start.items()})  # s_k, 0-d

    def terms(self, losses):
        """{name: the weighted term of eq. 6} for losses, a dict name -> scalar loss L_k."""
        unknown = sorted(set(losses) - set(self.log_var))
        if unknown:
            raise KeyError(f'UncertaintyWeighting has no sigma for {unknown}; it was built for {list(self.log_var)}')
        s = self.log_var
        # eq. 6: 0.5 * exp(-s_k) * L_k + 0.5 * s_k  ==  L_k / (2 sigma_k^2) + log sigma_k
        return {name: 0.5 * torch.exp(-s[name]) * loss + 0.5 * s[name] for name, loss in losses.items()}

    def forward(self, losses):
        """The sum of eq. 6 over the datasets in losses; datasets absent from this step contribute nothing."""
        return sum(self.terms(losses).values())

    def sigmas(self):
        """{name: sigma_k} as plain floats, for logging."""
        return {name: math.exp(0.5 * s.item()) for name, s in self.log_var.items()}


# -----------------------------------------------------------------------------
# The informative loss over more than one batch: the RNG replay of gradient caching, and the gather across ranks

def get_rng_state(device):
    """The RNG state that dropout and stochastic depth draw from on device: the CPU's, and the GPU's on a GPU."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == 'cuda' else None, device


def set_rng_state(state):
    cpu, gpu, device = state
    torch.set_rng_state(cpu)
    if gpu is not None:
        torch.cuda.set_rng_state(gpu, device)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends each rank the gradient of its own rows, summed over all ranks."""

    @staticmethod
    def forward(ctx, z):
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z.contiguous())
        ctx.rows = slice(dist.get_rank() * z.shape[0], (dist.get_rank() + 1) * z.shape[0])
        return torch.cat(parts)                                         # (W*B, D), rank order

    @staticmethod
    def backward(ctx, grad):
        # every rank computes the same loss of the whole batch, so this rank's rows get a gradient from each
        grad = grad.contiguous()
        dist.all_reduce(grad)                                           # (W*B, D), summed over ranks
        return grad[ctx.rows]                                           # (B, D)


def gather_with_grad(z):
    """z (B, D) of every rank, concatenated (W*B, D), with gradients flowing back to each rank's own rows.

    Each rank's gradient is W times the true one (W ranks computed the same loss); DDP's averaging over ranks
    divides it by W again. Without a gather, the variance of eq. 2 would be the variance of a per-GPU batch,
    which with a few clips per GPU is noise. All ranks must have the same B (our samplers guarantee it)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return _GatherWithGrad.apply(z)


# -----------------------------------------------------------------------------
# The whole objective, composed from the config: every row of MultiTrain's Table 3 is a choice of switches

class Objective(nn.Module):
    """The training loss of one batch, composed from config switches, with the parameters of its terms.

    Supervised part: each sample is scored by its own dataset's head (or, with a projection, by every head,
    eqs. 4-5); per-sample losses are summed per dataset and, with dataset_loss='share', divided by the batch size
    (with 'proportional' or 'mixed' sampling and one step per round, by the step's samples on this rank), so in a
    batch that mixes datasets each one weighs by its share, as in MultiTrain's official code (a batch of one
    dataset gives the plain mean); with dataset_loss='mean', divided by the dataset's own count in the batch, so
    that L_k is its mean loss (CoVeR's reading). Each dataset's L_k is then weighted by a fixed CoVeR weight
    (CoVeR 3.3.1) and, optionally, by learned uncertainty (eq. 6). Informative part (eqs. 2-3): variance and
    covariance of the expander's output over the global batch (under gradient accumulation the whole step's, or
    with informative_batch='micro' each micro-batch's, see train.py). The total of eq. 6 with weights 1 is the
    paper's MultiTrain; all weights 0 and no projection is plain cross-entropy ("Vanilla")."""

    def __init__(self, num_classes, feature_dim, cfg):
        super().__init__()
        unknown = sorted(set(cfg.loss_weights) - set(num_classes))
        if unknown:
            raise ValueError(f'loss_weights names {unknown}, which are not datasets of this run: {list(num_classes)}')
        self.names = list(num_classes)
        self.weights = {name: float(cfg.loss_weights.get(name, 1.0)) for name in self.names}
        self.label_smoothing, self.var_weight, self.cov_weight = cfg.label_smoothing, cfg.var_weight, cfg.cov_weight
        self.projection = None if cfg.projection == 'none' else Projection(num_classes, cfg.projection,
                                                                           cfg.projection_init)
        informative = cfg.var_weight > 0 or cfg.cov_weight > 0
        self.expander = Expander(feature_dim, cfg.expander_hidden, cfg.expander_out) if informative else None
        # settings that a partial namespace (tools/bench.py) may lack take their config.py defaults
        self.dataset_loss = getattr(cfg, 'dataset_loss', 'share')
        self.uncertainty = (UncertaintyWeighting(self.names, getattr(cfg, 'uncertainty_init', 'zeros'))
                            if cfg.uncertainty else None)

    def forward(self, model, names, x, y, ds, z_grad=None, batch_total=None, mix=None):
        """(total loss, {dataset: L_k}, {regulariser: value}) for a batch x with labels y (B,) whose sample b
        belongs to dataset names[ds[b]]; the regularisers are the terms of the informative loss. model has
        .features(x) -> (B, D) and .heads[name]. With z_grad (B, D'), the gradient of the informative loss with
        respect to this batch's expander rows, computed beforehand over a larger batch (gradient caching, see
        informative_gradients), that loss is not computed here: a term of value 0 carries z_grad into the
        backward pass instead. batch_total: what the per-dataset sums are divided by, B by default; train.py passes
        the samples of the whole step when one step takes batches of several shapes (see below). mix: (y2 (B,),
        lam (B,)) when x was mixed by augment.py: sample b is lam_b of a sample of label y_b and 1 - lam_b of one of
        label y2_b, of the same dataset."""
        features = model.features(x)                                    # (B, D)
        # with a projection every head runs on every sample: W_ik needs dataset i's logits on k's samples
        heads = self.names if self.projection is not None else names
        logits = {name: model.heads[name](features) for name in heads}  # each (B, C_name)
        losses = {}
        for k, name in enumerate(names):
            member = ds == k                                            # (B,), no host sync: masks, not indexing
            per_sample = self._per_sample(logits, name, torch.where(member, y, 0))  # other datasets' labels may
            if mix is not None:                                                    # not exist here: 0 instead
                # mixup / CutMix: soft-target cross-entropy against lam * (smoothed one-hot of y) + (1 - lam) *
                # (smoothed one-hot of y2), which, cross-entropy being linear in the target, is this sum; with a
                # projection the projected logits are trained against the same soft targets
                y2, lam = mix
                per_sample = lam * per_sample + (1 - lam) * self._per_sample(logits, name, torch.where(member, y2, 0))
            if self.dataset_loss == 'mean':
                # L_k: k's mean loss in the batch; with CoVeR's weights the total is sum_k w_k * mean_k, "the
                # weighted sum of the losses across each dataset in that batch" (CoVeR, section 1). A batch
                # without a sample of k adds 0 (config.check allows 'mean' only where every micro-batch of every
                # rank holds each dataset the same number of times, so that this is the step's mean)
                count = member.sum().clamp(min=1)
            else:
                # L_k: k's summed losses over the batch (or the step's batches), so that k weighs by its share of
                # the samples: with CoVeR's weights sum_b w_{dataset of b} CE_b / B (a dataset of 1 sample in 16
                # weighs half as much as one of 2 in 16), as MultiTrain's official code sums its masked losses
                count = y.shape[0] if batch_total is None else batch_total
            losses[name] = (per_sample * member).sum() / count
        weighted = self.uncertainty.terms(losses) if self.uncertainty is not None else losses  # eq. 6
        total, regularisers = cover_weighted_sum(weighted, self.weights), {}
        if self.expander is not None and z_grad is not None:
            carrier = (self.expander(features).float() * z_grad).sum()  # gradient z_grad, value 0 below
            total = total + carrier - carrier.detach()
        elif self.expander is not None:
            informative, regularisers = self.informative(gather_with_grad(self.expander(features)))  # (W*B, D')
            total = total + informative
        return total, losses, regularisers

    def _per_sample(self, logits, name, targets):
        """(B,) losses of dataset `name`'s classes for targets (B,): its head's cross-entropy, or with a projection
        the projection loss (eq. 5)."""
        if self.projection is not None:
            return self.projection.loss(logits, name, targets, self.label_smoothing, 'none')  # eq. 5
        return cross_entropy(logits[name], targets, self.label_smoothing, 'none')

    def informative_gradients(self, features, xs, autocast=nullcontext()):
        """Gradient caching (Gao et al., 2021) for the informative loss under gradient accumulation, where that
        loss is one of the whole accumulated batch, not a sum over micro-batches. A first pass without a graph
        computes the expander's output of every micro-batch xs[m] (on every rank), the loss of all of them
        together and its gradient for each row. The usual pass then restores each micro-batch's RNG state (the
        same dropout and stochastic depth) and sends its rows their gradient through forward(z_grad=...): one
        forward pass more per step. features: the model's features function.
        Returns ([z_grad (b, D') of each micro-batch], [RNG state before each], {regulariser: value}, their
        weighted sum)."""
        zs = []
        states = []
        with torch.no_grad():
            for x in xs:
                states.append(get_rng_state(x.device))
                with autocast:
                    zs.append(self.expander(features(x)).float())       # (b, D')
            z = torch.cat(zs)                                           # (M*b, D'), this rank's micro-batches
            ddp = dist.is_available() and dist.is_initialized()
            rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
            if world > 1:
                everyone = [torch.empty_like(z) for _ in range(world)]
                dist.all_gather(everyone, z)
                z = torch.cat(everyone)                                 # (W*M*b, D'), rank-major
        z.requires_grad_(True)
        total, terms = self.informative(z)
        grad, = torch.autograd.grad(total, z)                           # (W*M*b, D')
        own = grad[rank * len(grad) // world:(rank + 1) * len(grad) // world] * world  # DDP divides by world
        return own.split([len(z_m) for z_m in zs]), states, {k: v.detach() for k, v in terms.items()}, total.detach()

    def informative(self, z):
        """(weighted sum, {term: value}) of the informative loss of the expander's output z (N, D')."""
        total = 0.0
        terms = {}
        if self.var_weight > 0:
            terms['variance'] = variance_loss(z)                        # eq. 2
            total = total + self.var_weight * terms['variance']
        if self.cov_weight > 0:
            terms['covariance'] = covariance_loss(z)                    # eq. 3
            total = total + self.cov_weight * terms['covariance']
        return total, terms
