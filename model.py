"""
The frame-wise Vision Transformer with token shift (IV-ViT, papers/iv-vit.txt section 3).

One network for images and videos:
- an image batch (B, 3, H, W) goes through a plain ViT and the head reads the class token (eqs. 1-3);
- a video batch (B, 3, T, H, W) is folded into B*T frames that go through the SAME embedding and blocks;
  the per-frame class tokens are averaged over time (late fusion, eqs. 4-6), then the head reads the mean;
- between frames, each block shifts a few channels of the class token forward and backward in time
  (TokenShift, eqs. 7-8), so that a frame-wise model can see motion. Images are never shifted.
There is one classification head per dataset, chosen by the dataset's name.

Names follow timm's ViT (patch_embed, cls_token, pos_embed, blocks.i.norm1/attn.qkv/attn.proj/norm2/mlp.fc1/
mlp.fc2, norm), so that readers who know timm find their way, and weights convert with a key map.
"""

import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


def token_shift(x, num_frames, fold):
    """TokenShift on the class token (iv-vit.txt eqs. 7-8).

    x is (B*T, N+1, D) with the frames of a clip adjacent. Channels [0:fold] of frame t take frame t+1's
    values and channels [fold:2*fold] take frame t-1's, zero-filled at the ends of the clip; the patch tokens
    and the other channels are untouched (eq. 8). This is the channel order of the TokenShift code; the printed
    eq. 7 lists the backward part first, which only permutes channels (it matters for pretrained weights only).
    """
    if num_frames == 1 or fold == 0:
        return x
    cls = x[:, 0].unflatten(0, (-1, num_frames))                            # (B, T, D)
    from_next = F.pad(cls[:, 1:, :fold], (0, 0, 0, 1))                      # (B, T, fold): frame t <- t+1
    from_prev = F.pad(cls[:, :-1, fold:2 * fold], (0, 0, 1, 0))             # (B, T, fold): frame t <- t-1
    cls = torch.cat([from_next, from_prev, cls[:, :, 2 * fold:]], dim=-1)   # (B, T, D)
    return torch.cat([cls.flatten(0, 1).unsqueeze(1), x[:, 1:]], dim=1)     # (B*T, N+1, D)


def drop_path(x, p, training):
    """Stochastic depth: drop the whole residual branch of some samples, rescale the others."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(1 - p)
    return x * keep / (1 - p)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection and PyTorch's fused attention kernel."""

    def __init__(self, dim, num_heads):
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} is not divisible by num_heads {num_heads}'
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads)  # (B, N, 3, h, D/h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                   # 3 x (B, h, N, D/h)
        x = F.scaled_dot_product_attention(q, k, v)                            # (B, h, N, D/h)
        x = x.transpose(1, 2).reshape(B, N, D)                                 # (B, N, D)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with token shift before each sub-layer.

    As in TokenShift, the shifted stream is also the residual: x <- shift(x); x <- x + attn(norm1(x)); and the
    same again around the MLP.
    """

    def __init__(self, dim, num_heads, mlp_ratio, shift_div, drop_path):
        super().__init__()
        self.fold = dim // shift_div if shift_div > 0 else 0
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, num_frames):
        x = token_shift(x, num_frames, self.fold)
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        x = token_shift(x, num_frames, self.fold)
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
        return x


def make_head(kind, dim, num_classes):
    """'linear' as IV-ViT; 'mlp' as MultiTrain's heads (hidden width 4*dim here, 2048 in the official code)."""
    if kind == 'linear':
        return nn.Linear(dim, num_classes)
    if kind == 'mlp':
        return nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.5), nn.Linear(4 * dim, num_classes))
    raise ValueError(f"head must be 'linear' or 'mlp', got {kind!r}")


class VisionTransformer(nn.Module):
    """Frame-wise ViT: (B, 3, H, W) images or (B, 3, T, H, W) videos -> (B, D) features -> per-dataset logits."""

    def __init__(self, num_classes, img_size=224, patch_size=16, dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, shift_div=4, head='linear', drop_path=0.0):
        super().__init__()
        assert img_size % patch_size == 0, f'img_size {img_size} is not a multiple of patch_size {patch_size}'
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]  # linearly increasing stochastic depth
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, shift_div, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.heads = nn.ModuleDict({name: make_head(head, dim, c) for name, c in num_classes.items()})
        self.apply(_init_weights)
        with torch.no_grad():
            self.pos_embed[0, 1:] = sincos_position_embedding(dim, img_size // patch_size)  # the class token's stays 0
        fan_in = 3 * patch_size * patch_size
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1 / fan_in))

    def features(self, x):
        """Backbone features, (B, D): the class token of an image, the time-average of a video's (eq. 5)."""
        num_frames = 1
        if x.ndim == 5:                                             # video (B, 3, T, H, W)
            num_frames = x.shape[2]
            x = x.transpose(1, 2).flatten(0, 1)                     # (B*T, 3, H, W)
        x = self.patch_embed(x).flatten(2).transpose(1, 2)          # (B*T, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)             # (B*T, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed             # (B*T, N+1, D), eq. 1
        for block in self.blocks:
            x = block(x, num_frames)                                # eq. 2 / eq. 4
        x = self.norm(x[:, 0])                                      # (B*T, D): LayerNorm is per token
        return x.unflatten(0, (-1, num_frames)).mean(dim=1)         # (B, D), late average fusion, eq. 5

    def forward(self, x, dataset):
        """Logits of dataset `dataset`'s head (eqs. 3 and 6)."""
        return self.heads[dataset](self.features(x))


def sincos_position_embedding(dim, grid):
    """Fixed 2-D sin-cos positions (grid*grid, dim), used to initialise the learned position embedding.

    From scratch on small data a randomly initialised position embedding learns slowly where things are; starting
    from sin-cos values (as MAE and MoCo v3 do, there kept fixed) makes position usable from the first step.
    """
    assert dim % 4 == 0, f'dim {dim} must be a multiple of 4 for the sin-cos position embedding'
    omega = 1.0 / 10000 ** (torch.arange(dim // 4) / (dim // 4))                   # (D/4,)
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing='ij')   # (g, g) each
    y, x = y.flatten()[:, None] * omega, x.flatten()[:, None] * omega               # (g*g, D/4) each
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)                   # (g*g, D)


def _init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def build_model(cfg, num_classes):
    """The backbone named by cfg.backbone with one head per dataset; num_classes: {dataset name: C}."""
    if cfg.backbone != 'vit':
        raise ValueError(f"backbone must be 'vit' (the MViT variant is not written yet), got {cfg.backbone!r}")
    return VisionTransformer(num_classes, img_size=cfg.img_size, patch_size=cfg.patch_size, dim=cfg.dim,
                             depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                             shift_div=cfg.shift_div, head=cfg.head, drop_path=cfg.drop_path)


def configure_optimizer(model, lr, weight_decay, betas, device_type):
    """AdamW with weight decay on weight matrices and kernels only (not on biases, norms, tokens, positions)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = lambda n, p: p.ndim < 2 or n in ('cls_token', 'pos_embed')
    groups = [dict(params=[p for n, p in params if not no_decay(n, p)], weight_decay=weight_decay),
              dict(params=[p for n, p in params if no_decay(n, p)], weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == 'cuda')


# -----------------------------------------------------------------------------
# torchvision weights: parity tests and pretrained initialisation

_VIT_BLOCK_KEYS = {'ln_1.': 'norm1.', 'self_attention.in_proj_': 'attn.qkv.', 'self_attention.out_proj.': 'attn.proj.',
                   'ln_2.': 'norm2.', 'mlp.0.': 'mlp.fc1.', 'mlp.3.': 'mlp.fc2.'}
_VIT_KEYS = {'conv_proj.': 'patch_embed.', 'class_token': 'cls_token', 'encoder.pos_embedding': 'pos_embed',
             'encoder.ln.': 'norm.'}


def _vit_key(key, head):
    """A torchvision VisionTransformer state-dict key -> ours (None if there is no such place)."""
    block = re.fullmatch(r'encoder\.layers\.encoder_layer_(\d+)\.(.+)', key)
    if block:
        prefix, table, rest = f'blocks.{block[1]}.', _VIT_BLOCK_KEYS, block[2]
    else:
        prefix, table, rest = '', {**_VIT_KEYS, 'heads.head.': f'heads.{head}.'}, key
    for old, new in table.items():
        if rest.startswith(old):
            return prefix + new + rest[len(old):]
    return None


def convert_state_dict(theirs, ours, rename):
    """Map every key of `theirs` with rename(key) onto `ours` (both state dicts), checking every shape.

    A key of theirs with no place in ours, a shape that does not fit, or a key of ours left without a value is
    an error naming the key: a converter that silently skips weights produces a model that is silently wrong.
    """
    out = {}
    for key, value in theirs.items():
        new = rename(key)
        if new is None or new not in ours:
            raise KeyError(f'torchvision key {key!r} has no place in this model (mapped to {new!r})')
        if value.shape != ours[new].shape:
            raise ValueError(f'torchvision {key!r} {tuple(value.shape)} does not fit {new!r} {tuple(ours[new].shape)}')
        out[new] = value
    missing = sorted(set(ours) - set(out))
    if missing:
        raise KeyError(f'no torchvision weights for {missing}')
    return out


def from_torchvision(tv_model, dataset='torchvision', shift_div=0):
    """This project's model with the weights of a torchvision VisionTransformer (vit_b_16 or any size).

    The architecture is read from the module itself, and the single classification head is named `dataset`.
    On images the logits equal torchvision's; on a video (B, 3, T, H, W) with shift_div=0 they equal the head
    applied to the mean of torchvision's per-frame class-token features.
    """
    import torchvision
    if not isinstance(tv_model, torchvision.models.VisionTransformer):
        raise TypeError(f'from_torchvision takes a torchvision VisionTransformer, got {type(tv_model).__name__}')
    layers = tv_model.encoder.layers
    model = VisionTransformer({dataset: tv_model.num_classes}, img_size=tv_model.image_size,
                              patch_size=tv_model.patch_size, dim=tv_model.hidden_dim, depth=len(layers),
                              num_heads=layers[0].self_attention.num_heads,
                              mlp_ratio=tv_model.mlp_dim / tv_model.hidden_dim, shift_div=shift_div)
    state = convert_state_dict(tv_model.state_dict(), model.state_dict(), lambda k: _vit_key(k, dataset))
    model.load_state_dict(state)
    return model


def resize_pos_embed(pos_embed, grid):
    """(1, 1 + g*g, D) -> (1, 1 + grid*grid, D): the patch positions resampled bicubically, the class token's kept."""
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    g = math.isqrt(patches.shape[1])
    if g == grid:
        return pos_embed
    patches = patches.reshape(1, g, g, -1).permute(0, 3, 1, 2)                        # (1, D, g, g)
    patches = F.interpolate(patches, size=(grid, grid), mode='bicubic', align_corners=False)
    return torch.cat([cls, patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)         # (1, 1 + grid*grid, D)


def load_torchvision_backbone(model, name):
    """Copy the backbone of torchvision's pretrained `name` (e.g. 'vit_b_16') into model; the heads stay new.

    torchvision downloads the weights on first use. The position embedding is resampled when model's input
    size differs from the pretrained one (e.g. 64x64 Tiny-ImageNet crops from 224x224 ImageNet weights).
    """
    import torchvision
    if not isinstance(model, VisionTransformer):  # before the download
        raise ValueError(f"init_from='torchvision:{name}' needs backbone='vit'")
    tv_model = torchvision.models.get_model(name, weights='DEFAULT')
    state = {k: v for k, v in tv_model.state_dict().items() if not k.startswith('heads.')}
    grid = math.isqrt(model.pos_embed.shape[1] - 1)
    state['encoder.pos_embedding'] = resize_pos_embed(state['encoder.pos_embedding'], grid)
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith('heads.')}
    try:
        model.load_state_dict(convert_state_dict(state, ours, lambda k: _vit_key(k, None)), strict=False)
    except (KeyError, ValueError) as e:
        raise ValueError(f'{name} does not fit the configured model ({e}); for ViT-B/16 set patch_size=16, '
                         f'dim=768, depth=12, num_heads=12, mlp_ratio=4.0') from e
