"""losses.Objective, the composed training loss, against the equations written out sample by sample; and the
gather of the informative loss across processes against one process holding the whole batch."""

import math
import types

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

import config
import losses
from conftest import ce_loop, covariance_loop, project_loop, variance_loop
from losses import Objective, gather_with_grad

NUM_CLASSES = {'a': 3, 'b': 4, 'c': 2}


def make_cfg(**overrides):
    cfg = dict(label_smoothing=0.0, var_weight=0.0, cov_weight=0.0, projection='none', projection_init='zeros',
               expander_hidden=16, expander_out=8, uncertainty=False, loss_weights={})
    cfg.update(overrides)
    return types.SimpleNamespace(**cfg)


class TinyModel(nn.Module):
    """features = a linear map of x; one linear head per dataset, as the real models."""

    def __init__(self, dim=6):
        super().__init__()
        self.embed = nn.Linear(5, dim)
        self.heads = nn.ModuleDict({n: nn.Linear(dim, c) for n, c in NUM_CLASSES.items()})

    def features(self, x):
        return self.embed(x)


def batch(B=10, names=('a', 'b'), seed=0):
    g = torch.Generator().manual_seed(seed)
    ds = torch.randint(len(names), (B,), generator=g)
    y = torch.stack([torch.randint(NUM_CLASSES[names[k]], (), generator=g) for k in ds.tolist()])
    return torch.randn(B, 5, generator=g), y, ds


def reference(model, objective, cfg, names, x, y, ds):
    """The objective sample by sample: per-sample CE (or projected CE), masked sums / B, CoVeR weights,
    uncertainty terms 0.5 exp(-s) L + 0.5 s, and the informative terms on the expander output."""
    with torch.no_grad():
        f = model.features(x)
        logits = {n: model.heads[n](f) for n in NUM_CLASSES}
        B, total, parts = len(y), 0.0, {}
        for k, name in enumerate(names):
            per_sample = []
            for b in range(B):
                if ds[b] != k:
                    continue
                t = [int(y[b])]
                if cfg.projection == 'none':
                    per_sample.append(ce_loop([logits[name][b].tolist()], t, cfg.label_smoothing))
                    continue
                row = logits[name][b].tolist()
                sources = [i for i in NUM_CLASSES if i != name]
                proj = [project_loop(objective.projection.proj[f'{i}->{name}'].weight.tolist(), logits[i][b].tolist())
                        for i in sources]
                if cfg.projection == 'add':
                    for p in proj:
                        row = [u + v for u, v in zip(row, p)]
                    per_sample.append(ce_loop([row], t, cfg.label_smoothing))
                else:
                    own = ce_loop([row], t, cfg.label_smoothing)
                    per_sample.append(own + sum(ce_loop([p], t, cfg.label_smoothing) for p in proj) / len(proj))
            L = sum(per_sample) / B
            parts[name] = L
            if cfg.uncertainty:
                s = float(objective.uncertainty.log_var[name])
                L = 0.5 * math.exp(-s) * L + 0.5 * s
            total += cfg.loss_weights.get(name, 1.0) * L
        regularisers = {}
        if objective.expander is not None:
            z = objective.expander(f)
            regularisers['variance'], regularisers['covariance'] = variance_loop(z, 1e-4), covariance_loop(z)
            total += cfg.var_weight * regularisers['variance'] + cfg.cov_weight * regularisers['covariance']
    return total, parts, regularisers


@pytest.mark.parametrize('overrides', [
    dict(),                                                            # Vanilla: cross-entropy only
    dict(label_smoothing=0.1, loss_weights={'a': 0.3, 'b': 2.0}),      # CoVeR's fixed weights
    dict(projection='add', projection_init='normal'),                  # eqs. 4-5, paper
    dict(projection='separate', projection_init='normal'),             # official code
    dict(uncertainty=True),                                            # eq. 6
    dict(var_weight=1.0, cov_weight=1.0, projection='add', projection_init='normal', uncertainty=True),  # MultiTrain
])
def test_objective_matches_sample_by_sample_loop(overrides):
    torch.manual_seed(0)
    cfg = make_cfg(**overrides)
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, cfg)
    if objective.uncertainty is not None:  # away from s = 0, where a wrong sign would not show
        with torch.no_grad():
            for i, s in enumerate(objective.uncertainty.log_var.values()):
                s.fill_(0.3 * (i + 1) - 0.5)
    names, (x, y, ds) = ('a', 'b'), batch()
    total, parts, regularisers = objective(model, names, x, y, ds)
    want_total, want_parts, want_regularisers = reference(model, objective, cfg, names, x, y, ds)
    assert total.item() == pytest.approx(want_total, rel=1e-5, abs=1e-6)
    assert set(parts) == set(want_parts) and set(regularisers) == set(want_regularisers)
    for key, value in {**want_parts, **want_regularisers}.items():
        assert {**parts, **regularisers}[key].item() == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_single_dataset_batch_is_the_plain_mean_cross_entropy():
    cfg = make_cfg()
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, cfg)
    x, y, _ = batch(names=('b',))
    total, parts, _ = objective(model, ('b',), x, y, torch.zeros_like(y))
    expected = nn.functional.cross_entropy(model.heads['b'](model.features(x)), y)
    assert torch.allclose(total, expected) and torch.allclose(parts['b'], expected)


def test_mixed_batch_weighs_each_dataset_by_its_share():
    """Two datasets, 3 and 7 samples of 10: L_k is the mean over k's samples times k's share of the batch."""
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, make_cfg())
    x, y, ds = batch(B=10)
    _, parts, _ = objective(model, ('a', 'b'), x, y, ds)
    f = model.features(x)
    for k, name in enumerate('ab'):
        mask = ds == k
        mean = nn.functional.cross_entropy(model.heads[name](f[mask]), y[mask])
        assert parts[name].item() == pytest.approx(mean.item() * mask.float().mean().item(), rel=1e-5)


def test_a_training_step_changes_every_objective_parameter():
    cfg = make_cfg(var_weight=1.0, cov_weight=1.0, projection='add', projection_init='zeros', uncertainty=True)
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, cfg)
    before = {n: p.detach().clone() for n, p in objective.named_parameters()}
    assert any(n.startswith('expander') for n in before) and any(n.startswith('projection') for n in before)
    assert any(n.startswith('uncertainty') for n in before)
    params = list(model.parameters()) + list(objective.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for names in (('a', 'b'), ('c',)):  # every target dataset, so that every projection W_ik gets a gradient
        x, y, ds = batch(names=names)
        objective(model, names, x, y, ds)[0].backward()
    optimizer.step()
    unchanged = [n for n, p in objective.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f'not trained: {unchanged}'


class DropoutModel(TinyModel):
    """TinyModel with dropout on its features: each forward draws from the RNG, as stochastic depth does."""

    def features(self, x):
        return nn.functional.dropout(self.embed(x), 0.5, training=True)


@pytest.mark.parametrize('replay', [True, False])
def test_gradient_caching_gives_the_gradient_of_the_whole_accumulated_batch(replay):
    """Objective.informative_gradients, then the usual pass per micro-batch with its RNG state restored, gives
    the gradient of the informative loss of the micro-batches concatenated, with their dropout masks as drawn:
    here the reference holds the graph of every micro-batch at once. Without restoring the RNG state (replay
    False, what train.py must not do), the second pass draws other masks and the gradient is wrong."""
    cfg = make_cfg(var_weight=1.0, cov_weight=1.0)
    torch.manual_seed(0)
    model, objective = DropoutModel(), Objective(NUM_CLASSES, 6, cfg)
    params = list(model.embed.parameters()) + list(objective.expander.parameters())
    xs = [batch(B=6, seed=m)[0] for m in range(3)]                      # 3 micro-batches of 6

    torch.manual_seed(1)
    total, _ = objective.informative(torch.cat([objective.expander(model.features(x)) for x in xs]))
    expected = torch.autograd.grad(total, params)

    torch.manual_seed(1)
    z_grads, states, parts, cached_total = objective.informative_gradients(model.features, xs)
    assert cached_total.item() == pytest.approx(total.item(), rel=1e-6)
    assert set(parts) == {'variance', 'covariance'}
    for x, z_grad, state in zip(xs, z_grads, states):
        if replay:
            losses.set_rng_state(state)
        y, ds = torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long)
        loss, terms, regularisers = objective(model, ('a',), x, y, ds, z_grad=z_grad)
        assert not regularisers                                         # not computed again
        (loss - terms['a']).backward()                                  # the informative part alone
    error = max((p.grad - e).abs().max().item() for p, e in zip(params, expected))
    assert (error < 1e-6) == replay, error


def test_unknown_dataset_in_loss_weights_is_an_error():
    with pytest.raises(ValueError, match="'x'"):
        Objective(NUM_CLASSES, 6, make_cfg(loss_weights={'x': 1.0}))


def test_gather_without_distributed_is_the_identity():
    z = torch.randn(4, 3)
    assert gather_with_grad(z) is z


def _gather_worker(rank, world, store_dir, results):
    """Each rank holds its rows of z = x @ w; the informative loss of the gathered batch; DDP-style mean of grads."""
    import torch.distributed as dist
    from losses import covariance_loss, variance_loss
    dist.init_process_group('gloo', init_method=f'file://{store_dir}/store', rank=rank, world_size=world)
    torch.manual_seed(0)
    x, w = torch.randn(8, 5), torch.randn(5, 4)
    rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
    w = w.clone().requires_grad_()
    z = gather_with_grad(x[rows] @ w)
    loss = variance_loss(z) + covariance_loss(z)
    loss.backward()
    dist.all_reduce(w.grad)
    w.grad /= world  # what DDP does
    results[rank] = (loss.item(), w.grad.clone())
    dist.destroy_process_group()


def test_gather_with_grad_equals_one_process_with_the_whole_batch(tmp_path):
    from losses import covariance_loss, variance_loss
    torch.manual_seed(0)
    x, w = torch.randn(8, 5), torch.randn(5, 4).requires_grad_()
    loss = variance_loss(x @ w) + covariance_loss(x @ w)
    loss.backward()
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_gather_worker, args=(2, str(tmp_path), results), nprocs=2)
        results = dict(results)
    for rank in (0, 1):
        assert results[rank][0] == pytest.approx(loss.item(), rel=1e-6)
        assert torch.allclose(results[rank][1], w.grad, atol=1e-6), (results[rank][1], w.grad)


def test_dataset_loss_mean_is_the_weighted_sum_of_per_dataset_means():
    """CoVeR's reading (dataset_loss='mean'): L_k is the mean over k's samples, whatever its share, and the total
    the weighted sum of these means; 'share' gives each mean times the dataset's share of the batch."""
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, make_cfg(dataset_loss='mean', loss_weights={'b': 0.5}))
    x, y, ds = batch(B=10)
    total, parts, _ = objective(model, ('a', 'b'), x, y, ds)
    share = Objective(NUM_CLASSES, 6, make_cfg(loss_weights={'b': 0.5}))(model, ('a', 'b'), x, y, ds)[1]
    f = model.features(x)
    means = {}
    for k, name in enumerate('ab'):
        mask = ds == k
        means[name] = nn.functional.cross_entropy(model.heads[name](f[mask]), y[mask]).item()
        assert parts[name].item() == pytest.approx(means[name], rel=1e-5)
        assert share[name].item() == pytest.approx(means[name] * mask.float().mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(means['a'] + 0.5 * means['b'], rel=1e-5)


def test_dataset_loss_mean_is_refused_with_mixed_batches():
    with pytest.raises(config.ConfigError, match="dataset_loss='mean'"):
        config.load(['--sampling=mixed', '--dataset_loss=mean'])
    config.load(['--sampling=proportional', '--dataset_loss=mean'])


def test_official_uncertainty_init_draws_sigma_squared_from_0_2_to_1():
    torch.manual_seed(0)
    weighting = losses.UncertaintyWeighting([str(i) for i in range(200)], init='official')
    sigma2 = torch.stack([s.detach().exp() for s in weighting.log_var.values()])
    assert 0.2 <= sigma2.min() < 0.25 and 0.95 < sigma2.max() <= 1.0 and len(set(sigma2.tolist())) == 200
    assert all(s.item() == 0 for s in losses.UncertaintyWeighting(['a', 'b']).log_var.values())


def test_official_heads_and_weight_decay_of_positions():
    """The release's head (head_hidden=2048, dropout 0.5 after the GELU and on the output) and its weight decay on
    position embeddings (position_decay=True); by default 4 x dim, no output dropout, positions not decayed."""
    from model import build_model, configure_optimizer
    base = dict(backbone='mvit', mvit_preset='tiny', img_size=32, head='mlp', drop_path=0.0,
                datasets={'clips': dict(format='ucf101', num_frames=4)})
    defaults = config.to_dict(config.load([]))  # every other setting at its default
    plain = build_model(types.SimpleNamespace(**{**defaults, **base}), {'clips': 5})
    official = build_model(types.SimpleNamespace(**{**defaults, **base, 'head_hidden': 48, 'head_output_dropout': True}),
                           {'clips': 5})
    assert [type(m).__name__ for m in plain.heads['clips']] == ['Linear', 'GELU', 'Dropout', 'Linear']
    assert plain.heads['clips'][0].out_features == 4 * plain.num_features
    assert [type(m).__name__ for m in official.heads['clips']] == ['Linear', 'GELU', 'Dropout', 'Linear', 'Dropout']
    assert official.heads['clips'][0].out_features == 48 and official.heads['clips'][-1].p == 0.5
    positions = {id(p) for n, p in plain.named_parameters() if n.startswith('pos_embed')}
    for decay in (False, True):
        groups = configure_optimizer(plain, 1e-3, 0.05, (0.9, 0.999), 'cpu', position_decay=decay).param_groups
        decayed, undecayed = groups
        assert positions <= {id(p) for p in (decayed if decay else undecayed)['params']}
        assert all(p.ndim >= 2 or id(p) in positions for p in decayed['params'])  # biases, norms never decay
