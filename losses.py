"""
Training objectives.

The supervised term first: each dataset's head is trained with cross-entropy on that dataset's own labels
(IV-ViT, CoVeR), and CoVeR adds the per-dataset losses with fixed weights. Then the MultiTrain terms
(papers/multitrain.txt, section 3.2), each a small function or module next to its equation number:

    informative loss   variance_loss (eq. 2) + covariance_loss (eq. 3) on an Expander's output
    projection loss    Projection: every head's logits help train every other head (eqs. 4-5)
    weighting          UncertaintyWeighting: learned per-dataset weights (eq. 6)

Where the official release differs from the paper, a one-line note says how; the paper's form is the default.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def cross_entropy(logits, targets, label_smoothing=0.0):
    """Mean cross-entropy of (B, C) logits against (B,) class indices; computed in fp32 under autocast."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


def cover_weighted_sum(losses, weights):
    """CoVeR's objective (cover.txt, section 3.3.1): sum_i w^i * l^i with fixed, hand-chosen weights.

    losses and weights are dicts keyed by dataset name; a dataset absent from this step's losses simply adds
    nothing, but every loss must have a weight, so a typo in a config cannot silently drop a dataset.
    """
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
    it no longer protects the gradient of sqrt at var = 0, its whole purpose.
    """
    _check_batch(z, 'variance_loss')
    z = _at_least_fp32(z)
    std = torch.sqrt(z.var(dim=0, correction=1) + eps)  # (D,)
    return F.relu(1.0 - std).mean()                      # eq. 2 (VICReg / official-code form)


def covariance_loss(z):
    """Sum of squared off-diagonal entries of the batch covariance, divided by D: decorrelates the dimensions,
    so that the variance term cannot be satisfied by D copies of one informative feature.

    z: (B, D). The diagonal (the variances) is left to variance_loss.
    """
    _check_batch(z, 'covariance_loss')
    z = _at_least_fp32(z)
    B, D = z.shape
    z = z - z.mean(dim=0)                               # (B, D), centred per dimension
    cov = z.T @ z / (B - 1)                             # (D, D), eq. 3, first line
    off_diagonal = cov - torch.diag_embed(cov.diagonal())  # (D, D) with an exactly zero diagonal
    return off_diagonal.pow(2).sum() / D                # eq. 3, second line


class Expander(nn.Module):
    """The two-layer MLP that maps backbone features Z to Z', on which the informative loss is computed.

    Official sizes: 768 -> 4096 -> 768 with GELU and no batch norm (a batch norm would standardise the very
    batch statistics the loss is meant to shape). Used only in training.
    """

    def __init__(self, dim, hidden, out):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, z):
        return self.fc2(self.act(self.fc1(z)))  # (B, dim) -> (B, out)


# -----------------------------------------------------------------------------
# Projection loss (eqs. 4-5): every head runs on every sample, and a learned linear map W_ik turns dataset i's
# logits into evidence for dataset k's classes ('clean and jerk' in Kinetics is also 'weightlifting' in MiT)

class Projection(nn.Module):
    """One bias-free Linear(C_i, C_k) per ordered pair of datasets i != k, applied to raw logits (no softmax).

    mode 'add' (paper, eqs. 4-5): Y'_k = Y_k + sum_{i != k} W_ik Y_i, cross-entropy of Y'_k with k's labels.
    mode 'separate' (official code): CE(Y_k) + mean over i != k of CE(W_ik Y_i), each against k's labels; the
    paper's ablation reports that adding without the informative loss does not converge.
    init 'zeros' starts as plain per-head cross-entropy; 'normal' (std 0.02) is the official choice.
    """

    def __init__(self, num_classes, mode='add', init='zeros'):
        super().__init__()
        assert mode in ('add', 'separate'), f"Projection mode must be 'add' or 'separate', got {mode!r}"
        assert init in ('zeros', 'normal'), f"Projection init must be 'zeros' or 'normal', got {init!r}"
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

    def loss(self, logits, target_dataset, targets, label_smoothing=0.0):
        """The projection loss L_k for samples of target_dataset with labels targets (B,)."""
        if self.mode == 'add':
            # eq. 5 writes log(Y'_k); Y'_k are logits, so the softmax is implied: ordinary cross-entropy
            return cross_entropy(self.project(logits, target_dataset), targets, label_smoothing)  # eqs. 4-5
        # official code: the projected logits are never added to Y_k; each gets its own cross-entropy
        own = cross_entropy(logits[target_dataset], targets, label_smoothing)
        projected = [cross_entropy(y, targets, label_smoothing) for y in self.projected(logits, target_dataset)]
        return own + sum(projected) / max(len(projected), 1)  # a single dataset has no sources: plain CE

    @torch.no_grad()
    def top_pairs(self, source, target, k=5):
        """The k largest weights of W_source->target as [(source class, target class, weight)], largest first:
        which classes of `source` the model learned to read as evidence for which classes of `target`
        (multitrain.txt, Table 4)."""
        weight = self.proj[f'{source}->{target}'].weight  # (C_target, C_source)
        values, flat = weight.flatten().topk(min(k, weight.numel()))  # (k,), indices into C_target * C_source
        t, s = flat // weight.shape[1], flat % weight.shape[1]
        return [(int(si), int(ti), float(v)) for si, ti, v in zip(s, t, values)]


# -----------------------------------------------------------------------------
# Uncertainty weighting (eq. 6, Kendall et al.): learn each dataset's loss weight instead of tuning it

class UncertaintyWeighting(nn.Module):
    """sum_k L_k / (2 sigma_k^2) + log sigma_k with one learnable sigma_k per dataset.

    We learn s_k = log sigma_k^2 (initialised to 0, i.e. sigma_k = 1): then the weight exp(-s_k) is positive
    for every s_k, with no division by a parameter that could reach zero. (The official release keeps sigma^2
    itself, never hands it to the optimizer, and ships with the weighting off.) For a fixed L_k the objective
    is minimised at s_k = log L_k: a dataset with a larger loss is down-weighted, at the price of log sigma_k.
    """

    def __init__(self, names):
        super().__init__()
        self.log_var = nn.ParameterDict({name: nn.Parameter(torch.zeros(())) for name in names})  # s_k, 0-d

    def forward(self, losses):
        """losses: dict name -> scalar loss L_k; datasets absent from this step contribute nothing."""
        unknown = sorted(set(losses) - set(self.log_var))
        if unknown:
            raise KeyError(f'UncertaintyWeighting has no sigma for {unknown}; it was built for {list(self.log_var)}')
        s = self.log_var
        # eq. 6: 0.5 * exp(-s_k) * L_k + 0.5 * s_k  ==  L_k / (2 sigma_k^2) + log sigma_k
        return sum(0.5 * torch.exp(-s[name]) * loss + 0.5 * s[name] for name, loss in losses.items())

    def sigmas(self):
        """{name: sigma_k} as plain floats, for logging."""
        return {name: math.exp(0.5 * s.item()) for name, s in self.log_var.items()}
