"""
Training objectives.

So far only the supervised term: each dataset's head is trained with cross-entropy on that dataset's own
labels (IV-ViT, CoVeR). The MultiTrain terms (informative loss, projection loss, uncertainty weighting) come
here next, each as a small function next to its equation number.
"""

import torch.nn.functional as F


def cross_entropy(logits, targets, label_smoothing=0.0):
    """Mean cross-entropy of (B, C) logits against (B,) class indices; computed in fp32 under autocast."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
