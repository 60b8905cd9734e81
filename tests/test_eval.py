"""evaluate(): multi-view averaging of softmax scores, top-1/top-5 and per-class counts, against a plain loop."""

import types

import torch

from eval import evaluate


class Lookup(torch.nn.Module):
    """A 'model' whose logits for a view are stored in the input itself: x[..., 0] holds the C logits."""

    def forward(self, x, dataset):
        assert dataset == 'toy'
        return x.flatten(1)[:, :7]  # (B*V, C)


def test_evaluate_matches_a_plain_loop():
    torch.manual_seed(0)
    C, V = 7, 3
    batches = [(torch.randn(B, V, 7, 2), torch.randint(0, C, (B,))) for B in (5, 4, 6)]  # last dim: padding
    dataset = types.SimpleNamespace(classes=[f'c{i}' for i in range(C)])
    result = evaluate(Lookup(), {'toy': Loader(batches, dataset)}, 'cpu')['toy']

    top1 = top5 = n = 0
    per_class = {c: [0, 0] for c in range(C)}
    for x, y in batches:
        for b in range(len(y)):
            scores = sum(torch.softmax(x[b, v].flatten()[:C], 0) for v in range(V)) / V
            ranked = sorted(range(C), key=lambda c: -scores[c].item())
            top1 += ranked[0] == y[b].item()
            top5 += y[b].item() in ranked[:5]
            n += 1
            per_class[y[b].item()][0] += 1
            per_class[y[b].item()][1] += ranked[0] == y[b].item()
    assert result['n'] == n == 15
    assert abs(result['top1'] - 100 * top1 / n) < 1e-9
    assert abs(result['top5'] - 100 * top5 / n) < 1e-9
    for c, (count, hits) in per_class.items():
        assert abs(result['per_class_top1'][f'c{c}'] - (100 * hits / count if count else 0.0)) < 1e-4


class Loader:
    """Just enough of a DataLoader: iterable over (x, y) batches, with .dataset.classes."""

    def __init__(self, batches, dataset):
        self.batches, self.dataset = batches, dataset

    def __iter__(self):
        return iter(self.batches)
