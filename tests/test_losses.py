"""The MultiTrain loss terms against the equations written out as plain Python loops, sample by sample."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import ce_loop, covariance_loop, project_loop, variance_loop
from losses import (Expander, Projection, UncertaintyWeighting, cover_weighted_sum, covariance_loss,
                    cross_entropy, variance_loss)


# ----------------------------------------------------------------------------- loop references
# (variance_loop, covariance_loop, ce_loop and project_loop are in conftest.py, shared with test_objective)

def projection_add_loop(proj, logits, k, targets, label_smoothing):
    """Eqs. 4-5: Y'_k = Y_k + sum_{i != k} W_ik Y_i per sample, then cross-entropy with k's labels."""
    rows = []
    for b in range(len(targets)):
        row = logits[k][b].tolist()
        for i in logits:
            if i != k:
                p = project_loop(proj.proj[f'{i}->{k}'].weight.tolist(), logits[i][b].tolist())
                row = [a + c for a, c in zip(row, p)]
        rows.append(row)
    return ce_loop(rows, targets.tolist(), label_smoothing)


def projection_separate_loop(proj, logits, k, targets, label_smoothing):
    """Official form: CE(Y_k) + mean over sources i of CE(W_ik Y_i)."""
    t = targets.tolist()
    own = ce_loop(logits[k].tolist(), t, label_smoothing)
    sources = [i for i in logits if i != k]
    projected = 0.0
    for i in sources:
        weight = proj.proj[f'{i}->{k}'].weight.tolist()
        projected += ce_loop([project_loop(weight, y) for y in logits[i].tolist()], t, label_smoothing)
    return own + projected / len(sources)


NUM_CLASSES = {'k400': 7, 'mit': 5, 'ssv2': 4}


def random_logits(B=6, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(B, c, generator=g, requires_grad=requires_grad) for n, c in NUM_CLASSES.items()}


def random_projection(mode, seed=0):
    torch.manual_seed(seed)
    proj = Projection(NUM_CLASSES, mode=mode, init='normal')
    with torch.no_grad():  # std 0.02 barely moves the loss; larger weights make the comparison meaningful
        for layer in proj.proj.values():
            layer.weight.mul_(25)
    return proj


# ----------------------------------------------------------------------------- informative loss

@pytest.mark.parametrize('B,D,scale', [(8, 5, 1.0), (5, 12, 0.5), (32, 3, 1.5)])
def test_variance_matches_loop(B, D, scale):
    g = torch.Generator().manual_seed(B * D)
    z = scale * torch.randn(B, D, generator=g, dtype=torch.float64)
    assert variance_loss(z).item() == pytest.approx(variance_loop(z, 1e-4), rel=1e-12, abs=1e-14)
    assert variance_loss(z, eps=0.3).item() == pytest.approx(variance_loop(z, 0.3), rel=1e-12, abs=1e-14)


def test_variance_of_collapsed_batch_is_one_minus_sqrt_eps():
    # 8 identical rows: every dimension has zero variance, so each hinge is 1 - sqrt(eps) exactly
    torch.manual_seed(0)
    z = torch.randn(1, 16, dtype=torch.float64).repeat(8, 1)
    for eps in (1e-4, 0.01):
        assert variance_loss(z, eps).item() == 1 - math.sqrt(eps)


def test_variance_is_zero_when_every_std_is_at_least_one():
    torch.manual_seed(0)
    z = 10 * torch.randn(64, 20)
    assert torch.all(z.std(dim=0) >= 1)
    assert variance_loss(z).item() == 0.0


def test_variance_in_bf16_is_computed_in_fp32():
    torch.manual_seed(0)
    z = torch.randn(16, 8)
    loss = variance_loss(z.bfloat16())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(variance_loss(z.bfloat16().float()).item(), abs=1e-6)


@pytest.mark.parametrize('B,D', [(8, 5), (4, 9), (30, 3)])
def test_covariance_matches_loop(B, D):
    g = torch.Generator().manual_seed(B + D)
    z = torch.randn(B, D, generator=g, dtype=torch.float64) @ torch.randn(D, D, generator=g, dtype=torch.float64)
    loss = covariance_loss(z).item()
    assert loss > 1e-3  # correlated dimensions: the test below is not comparing zeros
    assert loss == pytest.approx(covariance_loop(z), rel=1e-12)


def test_covariance_of_decorrelated_batch_is_zero():
    # columns orthogonal to each other and to the all-ones vector: centred and uncorrelated, with very
    # different variances, which the covariance term must ignore
    torch.manual_seed(0)
    x = torch.randn(16, 6, dtype=torch.float64)
    q, _ = torch.linalg.qr(x - x.mean(dim=0))                              # (16, 6), orthonormal, centred
    z = q * torch.tensor([0.1, 1.0, 3.0, 10.0, 0.5, 2.0], dtype=torch.float64)
    assert covariance_loss(z).item() < 1e-20
    assert covariance_loss(z + 5.0).item() < 1e-20  # an offset changes nothing: the batch is centred first


def test_informative_losses_reject_a_single_sample():
    for fn in (variance_loss, covariance_loss):
        with pytest.raises(ValueError, match='B >= 2'):
            fn(torch.randn(1, 4))


def test_expander_shapes_and_no_batch_statistics():
    torch.manual_seed(0)
    expander = Expander(12, 40, 10)
    z = torch.randn(6, 12)
    out = expander(z)
    assert out.shape == (6, 10)
    # no batch norm: a sample's output does not depend on the rest of the batch
    torch.testing.assert_close(expander(z[2:3]), out[2:3])
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)) for m in expander.modules())


# ----------------------------------------------------------------------------- projection loss

def test_projection_has_every_ordered_pair_with_the_right_shape():
    proj = Projection(NUM_CLASSES)
    expected = {f'{i}->{k}' for i in NUM_CLASSES for k in NUM_CLASSES if i != k}
    assert set(proj.proj.keys()) == expected and len(expected) == 6
    for i, c_i in NUM_CLASSES.items():
        for k, c_k in NUM_CLASSES.items():
            if i != k:
                layer = proj.proj[f'{i}->{k}']
                assert layer.weight.shape == (c_k, c_i) and layer.bias is None
                assert torch.all(layer.weight == 0)


def test_projection_normal_init_has_std_002():
    torch.manual_seed(0)
    big = Projection({'a': 400, 'b': 300}, init='normal')
    w = torch.cat([layer.weight.flatten() for layer in big.proj.values()])
    assert w.std().item() == pytest.approx(0.02, rel=0.02) and abs(w.mean().item()) < 1e-3


@pytest.mark.parametrize('label_smoothing', [0.0, 0.1])
@pytest.mark.parametrize('target', list(NUM_CLASSES))
def test_projection_add_matches_loop(target, label_smoothing):
    proj = random_projection('add')
    logits = random_logits()
    targets = torch.randint(NUM_CLASSES[target], (6,), generator=torch.Generator().manual_seed(1))
    loss = proj.loss(logits, target, targets, label_smoothing).item()
    reference = projection_add_loop(proj, logits, target, targets, label_smoothing)
    assert loss == pytest.approx(reference, rel=1e-5)
    # the projection really contributes: the loss differs from the target head's plain cross-entropy
    assert abs(loss - cross_entropy(logits[target], targets, label_smoothing).item()) > 1e-3


@pytest.mark.parametrize('label_smoothing', [0.0, 0.1])
@pytest.mark.parametrize('target', list(NUM_CLASSES))
def test_projection_separate_matches_loop(target, label_smoothing):
    proj = random_projection('separate')
    logits = random_logits(seed=2)
    targets = torch.randint(NUM_CLASSES[target], (6,), generator=torch.Generator().manual_seed(3))
    loss = proj.loss(logits, target, targets, label_smoothing).item()
    assert loss == pytest.approx(projection_separate_loop(proj, logits, target, targets, label_smoothing), rel=1e-5)


def test_project_returns_eq4_logits():
    proj = random_projection('separate')  # project() is eq. 4 whatever the training mode
    logits = random_logits(B=3)
    y = proj.project(logits, 'mit')
    assert y.shape == (3, NUM_CLASSES['mit'])
    for b in range(3):
        row = logits['mit'][b].tolist()
        for i in ('k400', 'ssv2'):
            p = project_loop(proj.proj[f'{i}->mit'].weight.tolist(), logits[i][b].tolist())
            row = [a + c for a, c in zip(row, p)]
        assert y[b].tolist() == pytest.approx(row, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize('target', list(NUM_CLASSES))
def test_zero_projection_reduces_to_plain_cross_entropy(target):
    logits = random_logits(seed=4)
    targets = torch.randint(NUM_CLASSES[target], (6,), generator=torch.Generator().manual_seed(5))
    plain = F.cross_entropy(logits[target], targets).item()
    add = Projection(NUM_CLASSES, mode='add', init='zeros').loss(logits, target, targets).item()
    separate = Projection(NUM_CLASSES, mode='separate', init='zeros').loss(logits, target, targets).item()
    assert add == pytest.approx(plain, rel=1e-6)
    # W = 0: every projected logit vector is all zeros, whose cross-entropy is log C_k whatever the label
    assert separate == pytest.approx(plain + math.log(NUM_CLASSES[target]), rel=1e-6)


@pytest.mark.parametrize('mode', ['add', 'separate'])
def test_projection_gradients_reach_every_head(mode):
    proj = random_projection(mode)
    logits = random_logits(requires_grad=True)
    proj.loss(logits, 'ssv2', torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    for name, y in logits.items():
        assert y.grad is not None and y.grad.abs().sum() > 0, name
    for i in ('k400', 'mit'):
        assert proj.proj[f'{i}->ssv2'].weight.grad.abs().sum() > 0
    assert proj.proj['ssv2->k400'].weight.grad is None  # pairs into other targets are untouched


@pytest.mark.parametrize('mode', ['add', 'separate'])
def test_zero_projection_still_learns(mode):
    # at W = 0 the heads get no gradient through W, but W itself does, so it can leave zero
    proj = Projection(NUM_CLASSES, mode=mode, init='zeros')
    logits = random_logits(requires_grad=True)
    proj.loss(logits, 'k400', torch.tensor([0, 1, 2, 3, 4, 5])).backward()
    assert proj.proj['mit->k400'].weight.grad.abs().sum() > 0
    assert proj.proj['ssv2->k400'].weight.grad.abs().sum() > 0


def test_projection_needs_every_head():
    logits = random_logits()
    del logits['mit']
    with pytest.raises(KeyError, match='mit'):
        Projection(NUM_CLASSES).loss(logits, 'k400', torch.zeros(6, dtype=torch.long))


def test_single_dataset_projection_is_plain_cross_entropy():
    logits = {'only': torch.randn(4, 3)}
    targets = torch.tensor([0, 2, 1, 1])
    for mode in ('add', 'separate'):
        loss = Projection({'only': 3}, mode=mode).loss(logits, 'only', targets)
        assert loss.item() == pytest.approx(F.cross_entropy(logits['only'], targets).item(), rel=1e-6)


def test_top_pairs_finds_planted_weights():
    torch.manual_seed(0)
    proj = Projection(NUM_CLASSES, init='normal')
    w = proj.proj['k400->mit'].weight  # (C_mit = 5, C_k400 = 7)
    planted = [(6, 0, 3.0), (1, 4, 2.5), (3, 3, 2.0), (0, 2, 1.5), (5, 1, 1.0)]  # (k400 class, mit class, w)
    with torch.no_grad():
        for s, t, v in planted:
            w[t, s] = v
        proj.proj['mit->k400'].weight.fill_(9.0)  # the reverse direction must not be read
    top = proj.top_pairs('k400', 'mit', k=5)
    assert [(s, t) for s, t, _ in top] == [(s, t) for s, t, _ in planted]
    assert [v for _, _, v in top] == pytest.approx([v for _, _, v in planted])
    assert len(proj.top_pairs('k400', 'mit', k=100)) == 35


# ----------------------------------------------------------------------------- uncertainty weighting

def test_uncertainty_value_is_kendall_form():
    uw = UncertaintyWeighting(['a', 'b', 'c'])
    s = {'a': -0.7, 'b': 0.0, 'c': 1.3}
    with torch.no_grad():
        for name, v in s.items():
            uw.log_var[name].fill_(v)
    losses = {'a': torch.tensor(2.0), 'b': torch.tensor(0.3), 'c': torch.tensor(5.0)}
    expected = 0.0
    for name, loss in losses.items():
        sigma = math.sqrt(math.exp(s[name]))
        expected += loss.item() / (2 * sigma ** 2) + math.log(sigma)
    assert uw(losses).item() == pytest.approx(expected, rel=1e-6)
    assert uw.sigmas() == pytest.approx({n: math.exp(v / 2) for n, v in s.items()})
    # a dataset missing from this step contributes nothing
    partial = uw({'c': losses['c']}).item()
    assert partial == pytest.approx(5.0 / (2 * math.exp(1.3)) + 0.65, rel=1e-6)


def test_uncertainty_starts_at_sigma_one():
    uw = UncertaintyWeighting(['a', 'b'])
    assert uw.sigmas() == {'a': 1.0, 'b': 1.0}
    assert uw({'a': torch.tensor(2.0), 'b': torch.tensor(3.0)}).item() == pytest.approx(0.5 * (2.0 + 3.0))


@pytest.mark.parametrize('loss_value', [0.2, 1.0, 4.5])
def test_uncertainty_minimum_is_at_log_loss(loss_value):
    def grad_at(s_value):
        uw = UncertaintyWeighting(['a'])
        with torch.no_grad():
            uw.log_var['a'].fill_(s_value)
        uw({'a': torch.tensor(loss_value)}).backward()
        return uw.log_var['a'].grad.item()

    s_star = math.log(loss_value)
    assert abs(grad_at(s_star)) < 1e-6
    assert grad_at(s_star - 0.5) < -1e-3  # below the minimum the objective decreases with s
    assert grad_at(s_star + 0.5) > 1e-3   # above it, increases


def test_uncertainty_trains_with_adamw():
    uw = UncertaintyWeighting(['a', 'b', 'c'])
    optimizer = torch.optim.AdamW(uw.parameters(), lr=0.1)
    before = {n: p.item() for n, p in uw.log_var.items()}
    # losses away from 1, where the gradient at s = 0 vanishes
    uw({'a': torch.tensor(2.0), 'b': torch.tensor(0.5), 'c': torch.tensor(3.0)}).backward()
    optimizer.step()
    after = {n: p.item() for n, p in uw.log_var.items()}
    assert all(after[n] != before[n] for n in before)
    assert after['a'] > 0 and after['b'] < 0  # larger loss -> larger sigma (smaller weight)


def test_uncertainty_rejects_unknown_dataset():
    with pytest.raises(KeyError, match='typo'):
        UncertaintyWeighting(['a'])({'typo': torch.tensor(1.0)})


# ----------------------------------------------------------------------------- CoVeR

def test_cover_weighted_sum_matches_loop():
    g = torch.Generator().manual_seed(0)
    names = ['k400', 'mit', 'ssv2', 'in1k']
    losses = {n: torch.rand((), generator=g) * 5 for n in names}
    weights = {n: float(w) for n, w in zip(names, torch.rand(4, generator=g))}
    expected = 0.0
    for n in names:
        expected += weights[n] * losses[n].item()
    assert cover_weighted_sum(losses, weights).item() == pytest.approx(expected, rel=1e-6)
    # extra weights for datasets absent from this step are fine; a loss without a weight is not
    only_mit = cover_weighted_sum({'mit': losses['mit']}, weights).item()
    assert only_mit == pytest.approx(weights['mit'] * losses['mit'].item())
    with pytest.raises(KeyError, match='ucf'):
        cover_weighted_sum({'ucf': torch.tensor(1.0)}, weights)
