"""
The architectures. First the frame-wise Vision Transformer with token shift (IV-ViT, Shimizu & Tamaki,
arXiv:2308.10533, section 3).

One network for images and videos:
- an image batch (B, 3, H, W) goes through a plain ViT and the head reads the class token (eqs. 1-3);
- a video batch (B, 3, T, H, W) is folded into B*T frames that go through the SAME embedding and blocks;
  the per-frame class tokens are averaged over time (late fusion, eqs. 4-6), then the head reads the mean;
- between frames, each block shifts a few channels of the class token forward and backward in time
  (TokenShift, eqs. 7-8), so that a frame-wise model can see motion. Images are never shifted.
There is one classification head per dataset, chosen by the dataset's name.

Names follow timm's ViT (patch_embed, cls_token, pos_embed, blocks.i.norm1/attn.qkv/attn.proj/norm2/mlp.fc1/
mlp.fc2, norm), so that readers who know timm find their way, and weights convert with a key map (pretrained.py).

The second backbone, MViT, is MultiTrain's MViTv2 (Liang et al., arXiv:2209.12362, section 3.1): a video
transformer that works on the whole space-time token grid and pools it coarser block by block. Same contract:
images run as one-frame videos, features(x) is (B, D), one head per dataset. Its presets cover torchvision's
mvit_v2_s (whose weights convert exactly, see pretrained.py), MultiTrain's 24-block backbone, and a tiny one for
a CPU. build_model builds the one the config names, and configure_optimizer gives it AdamW.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


def token_shift(x, num_frames, fold):
    """TokenShift on the class token (IV-ViT eqs. 7-8; TokenShift, Zhang et al., arXiv:2108.02432).

    x is (B*T, N+1, D) with the frames of a clip adjacent. Channels [0:fold] of frame t take frame t+1's
    values and channels [fold:2*fold] take frame t-1's, zero-filled at the ends of the clip; the patch tokens
    and the other channels are untouched (eq. 8). This is the channel order of the TokenShift code; the printed
    eq. 7 lists the backward part first, which only permutes channels (it matters for pretrained weights only)."""
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
    """Two layers with a GELU between them: dim -> hidden -> out (dim by default). Also losses.Expander."""

    def __init__(self, dim, hidden, out=None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))  # (..., dim) -> (..., out)


class Block(nn.Module):
    """Pre-norm transformer block with token shift before each sub-layer.

    As in TokenShift, the shifted stream is also the residual: x <- shift(x); x <- x + attn(norm1(x)); and the
    same again around the MLP."""

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


def run_block(block, checkpointed, *inputs):
    """block(*inputs); with checkpointed (grad_checkpoint=True) and a graph being built, the block's inner
    activations are not kept for backward but recomputed there from its inputs: the memory of one block instead
    of all, for one more forward pass of each block. The RNG state is restored for the recomputation, so drop
    path and dropout draw the same as in the forward pass."""
    if checkpointed and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(block, *inputs, use_reentrant=False)
    return block(*inputs)


def make_head(kind, dim, num_classes, hidden=None, dropout=0.5, output_dropout=False):
    """'linear' as IV-ViT; 'mlp' as MultiTrain's heads: dim -> hidden (4 * dim by default; 2048 in the official
    code) -> num_classes with a GELU and dropout after it, and with output_dropout the same dropout on the logits
    too (the official code's Mlp drops after both layers; it has no dropout before its MLP heads)."""
    if kind == 'mlp':
        hidden = hidden or 4 * dim
        layers = [nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)]
        return nn.Sequential(*layers, *([nn.Dropout(dropout)] if output_dropout else []))
    return nn.Linear(dim, num_classes)  # 'linear'


class VisionTransformer(nn.Module):
    """Frame-wise ViT: (B, 3, H, W) images or (B, 3, T, H, W) videos -> (B, D) features -> per-dataset logits."""

    def __init__(self, num_classes, img_size=224, patch_size=16, dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, shift_div=4, head='linear', drop_path=0.0, head_options=None,
                 grad_checkpoint=False):
        super().__init__()
        assert img_size % patch_size == 0, f'img_size {img_size} is not a multiple of patch_size {patch_size}'
        num_patches = (img_size // patch_size) ** 2
        self.num_features = dim                                    # width of features(), what the heads read
        self.grad_checkpoint = grad_checkpoint                     # recompute each block in backward (run_block)
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]  # linearly increasing stochastic depth
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, shift_div, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.heads = nn.ModuleDict({name: make_head(head, dim, c, **(head_options or {}))
                                    for name, c in num_classes.items()})
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
            x = run_block(block, self.grad_checkpoint, x, num_frames)  # eq. 2 / eq. 4
        x = self.norm(x[:, 0])                                      # (B*T, D): LayerNorm is per token
        return x.unflatten(0, (-1, num_frames)).mean(dim=1)         # (B, D), late average fusion, eq. 5

    def forward(self, x, dataset):
        """Logits of dataset `dataset`'s head (eqs. 3 and 6)."""
        return self.heads[dataset](self.features(x))


def sincos_position_embedding(dim, grid):
    """Fixed 2-D sin-cos positions (grid*grid, dim), used to initialise the learned position embedding.

    From scratch on small data a randomly initialised position embedding learns slowly where things are; starting
    from sin-cos values (as MAE and MoCo v3 do, there kept fixed) makes position usable from the first step."""
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


# -----------------------------------------------------------------------------
# MViTv2: the multiscale backbone of MultiTrain (MultiTrain section 3.1, eq. 1)
#
# A video (B, 3, T, H, W) is cut into overlapping 3x7x7 cubes with stride 2x4x4: 16x224x224 becomes a grid of
# 8x56x56 tokens. The blocks then work on a shrinking grid of widening tokens: a block with a query stride
# (1, 2, 2) quarters the grid and (in these tables) doubles the width, so that early blocks see many simple tokens
# and late blocks few rich ones. Every block also pools its keys and values (the kv stride), so that attention
# over 25,088 queries looks at 392 keys instead of 25,088.

# One row per block: (heads, width in, width out, query stride (t, h, w), key/value stride (t, h, w)).
MVIT_V2_S = [                                # torchvision's mvit_v2_s: 16 blocks, 8x56x56 -> 8x7x7 tokens
    (1, 96, 96, (1, 1, 1), (1, 8, 8)),
    (2, 96, 192, (1, 2, 2), (1, 4, 4)),      # stage 2: grid 8x28x28
    (2, 192, 192, (1, 1, 1), (1, 4, 4)),
    (4, 192, 384, (1, 2, 2), (1, 2, 2)),     # stage 3: grid 8x14x14
    *[(4, 384, 384, (1, 1, 1), (1, 2, 2))] * 10,
    (8, 384, 768, (1, 2, 2), (1, 1, 1)),     # stage 4: grid 8x7x7
    (8, 768, 768, (1, 1, 1), (1, 1, 1)),
]
MVIT_MULTITRAIN = [                          # MultiTrain's MViTv2-B (the official code): 24 blocks, 96 -> 768
    *[(1, 96, 96, (1, 1, 1), (1, 8, 8))] * 2,
    (2, 96, 192, (1, 2, 2), (1, 4, 4)),
    *[(2, 192, 192, (1, 1, 1), (1, 4, 4))] * 2,
    (4, 192, 384, (1, 2, 2), (1, 2, 2)),
    *[(4, 384, 384, (1, 1, 1), (1, 2, 2))] * 15,
    (8, 384, 768, (1, 2, 2), (1, 1, 1)),
    *[(8, 768, 768, (1, 1, 1), (1, 1, 1))] * 2,
]
MVIT_TINY = [                                # for a CPU: 8 frames of 32x32 give a 4x8x8 grid -> 4x4x4 -> 4x2x2
    (1, 32, 32, (1, 1, 1), (1, 4, 4)),
    (2, 32, 64, (1, 2, 2), (1, 2, 2)),
    (2, 64, 64, (1, 1, 1), (1, 2, 2)),
    (4, 64, 128, (1, 2, 2), (1, 1, 1)),
    (4, 128, 128, (1, 1, 1), (1, 1, 1)),
]
# torchvision's model has a class token and relative positions; MultiTrain has neither (MultiTrain footnote 2
# and "Classification head"): absolute space + time position embeddings, and the mean over the last tokens.
MVIT_PRESETS = {
    'mvit_v2_s': dict(blocks=MVIT_V2_S, rel_pos=True, cls_token=True),
    'multitrain': dict(blocks=MVIT_MULTITRAIN, rel_pos=False, cls_token=False),
    'tiny': dict(blocks=MVIT_TINY, rel_pos=False, cls_token=False),
}
PATCH_KERNEL, PATCH_STRIDE, PATCH_PADDING = (3, 7, 7), (2, 4, 4), (1, 3, 3)
# Tokens and position tables: no weight decay (it would pull positions towards "no position"), trunc-normal init.
POSITION_PARAMS = ('cls_token', 'pos_embed', 'pos_embed_time', 'pos_embed_space', 'pos_embed_cls',
                   'rel_pos_t', 'rel_pos_h', 'rel_pos_w')


def ceil_div(n, s):
    """Output size of our poolings and of the patch embedding: odd kernel k, padding k // 2, stride s."""
    return -(-n // s)


def pool_tokens(x, pool, grid, num_cls):
    """Pool the grid tokens of x (B, h, num_cls + T*H*W, C) with pool, a Conv3d or MaxPool3d over C channels.

    The class token has no place in the grid and passes through unpooled. Heads are folded into the batch, so
    one kernel of C channels serves every head (as in the official code). Returns (x, the pooled grid)."""
    B, h, _, C = x.shape
    cls, x = x[:, :, :num_cls], x[:, :, num_cls:]
    x = x.reshape(B * h, *grid, C).permute(0, 4, 1, 2, 3)    # (B*h, C, T, H, W), channels last in memory
    # Speed only, the same numbers either way. On a CPU, oneDNN's depthwise 3-D convolution is about twice as fast
    # channels last, except for sparse (stride 8) pooling. On a GPU, cuDNN's channels-last depthwise weight gradient
    # took 86% of an MViTv2-S training step (H200, torch 2.11: 269 ms a step, 155 ms channels first)
    if x.is_cuda or max(pool.stride) > 4:
        x = x.contiguous()                                  # (B*h, C, T, H, W), channels first
    x = pool(x)                                             # (B*h, C, T', H', W')
    grid = tuple(x.shape[2:])
    x = x.flatten(2).transpose(1, 2).reshape(B, h, -1, C)   # (B, h, T'*H'*W', C)
    return (torch.cat([cls, x], dim=2) if num_cls else x), grid


def resize_table(table, length):
    """A (L, C) table of 1-D positions resampled linearly to (length, C); the same table if it fits already."""
    if table.shape[0] == length:
        return table
    return F.interpolate(table.t()[None], size=length, mode='linear')[0].t()   # (length, C)


def rel_pos_lookup(table, q_size, k_size):
    """(q_size, k_size, C): the table row for every query/key pair along one axis (time, height or width).

    Pooled grids are coarser, so both are compared at the finer one's scale: with L = max(q_size, k_size),
    query i sits at i * L / q_size and key j at j * L / k_size. Their offset, shifted to start at 0, indexes a table
    of 2L - 1 rows (resampled if it was built for another grid). Integer arithmetic; the official code does this in
    float32 and truncates, which agrees whenever one size divides the other."""
    L = max(q_size, k_size)
    i = torch.arange(q_size, device=table.device)[:, None]
    j = torch.arange(k_size, device=table.device)[None, :]
    offset = L * (i * k_size + (k_size - 1 - j) * q_size) // (q_size * k_size)   # (q, k): i L/q - j L/k + (k-1) L/k
    return resize_table(table, 2 * L - 1)[offset]


def pool_conv(channels, kernel, stride):
    """Depthwise Conv3d: every channel pooled on its own with a learned kernel (MViTv2's conv pooling)."""
    return nn.Conv3d(channels, channels, kernel, stride=stride, padding=[k // 2 for k in kernel], groups=channels,
                     bias=False)


class PoolingAttention(nn.Module):
    """Multi-head pooling attention (MHPA): queries, keys and values are pooled on the token grid before attending.

    The width changes here (dim_in -> dim_out, torchvision's proj_after_attn): qkv projects to the new width, so
    attention, residual pooling and output projection all run at dim_out. Query stride > 1 shrinks the output grid."""

    def __init__(self, dim_in, dim_out, num_heads, q_stride, kv_stride, kernel, grid, rel_pos, residual_pool):
        super().__init__()
        assert dim_out % num_heads == 0, f'dim {dim_out} is not divisible by num_heads {num_heads}'
        self.num_heads, self.rel_pos, self.residual_pool = num_heads, rel_pos, residual_pool
        head_dim = dim_out // num_heads
        self.qkv = nn.Linear(dim_in, 3 * dim_out)
        self.pool_q, self.norm_q = pool_conv(head_dim, kernel, q_stride), nn.LayerNorm(head_dim, eps=1e-6)
        self.pool_k, self.norm_k = pool_conv(head_dim, kernel, kv_stride), nn.LayerNorm(head_dim, eps=1e-6)
        self.pool_v, self.norm_v = pool_conv(head_dim, kernel, kv_stride), nn.LayerNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(dim_out, dim_out)
        if rel_pos:
            # tables sized as the official code sizes them for this block's input grid; another grid resamples them
            T, H, W = grid
            space = 2 * max(ceil_div(max(H, W), q_stride[1]), ceil_div(max(H, W), kv_stride[1])) - 1
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * T - 1, head_dim))
            self.rel_pos_h = nn.Parameter(torch.zeros(space, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(space, head_dim))

    def forward(self, x, grid, num_cls):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)   # 3 x (B, h, N, C)
        q, q_grid = pool_tokens(q, self.pool_q, grid, num_cls)                  # (B, h, Nq, C)
        k, k_grid = pool_tokens(k, self.pool_k, grid, num_cls)                  # (B, h, Nk, C)
        v, _ = pool_tokens(v, self.pool_v, grid, num_cls)                       # (B, h, Nk, C)
        q, k, v = self.norm_q(q), self.norm_k(k), self.norm_v(v)                # LayerNorm after pooling (cls too)
        bias = self.rel_pos_bias(q[:, :, num_cls:], q_grid, k_grid, num_cls) if self.rel_pos else None
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)            # (B, h, Nq, C)
        if self.residual_pool:  # MViTv2's residual pooling: + the pooled query, not on the class token
            x = x + F.pad(q[:, :, num_cls:], (0, 0, num_cls, 0))                # (B, h, Nq, C)
        x = x.transpose(1, 2).flatten(2)                                        # (B, Nq, h*C)
        return self.proj(x), q_grid

    def rel_pos_bias(self, q, q_grid, k_grid, num_cls):
        """Decomposed relative position bias q_i . (R_t[t_i, t_j] + R_h[h_i, h_j] + R_w[w_i, w_j]) (MViTv2), as a mask.

        q is (B, h, qt*qh*qw, C), the pooled queries without the class token. Returns (B, h, Nq, Nk), zero on the
        class token's row and column. The MViTv2 paper divides this bias by sqrt(C) with q.k; the official code
        (and torchvision) adds it unscaled, and so do we."""
        (qt, qh, qw), (kt, kh, kw) = q_grid, k_grid
        B, h, _, C = q.shape
        q = q.view(B, h, qt, qh, qw, C)
        # contiguous: einsum may hand back permuted strides, and the sum below takes its memory layout from them
        t = torch.einsum('bntyxc,tkc->bntyxk', q, rel_pos_lookup(self.rel_pos_t, qt, kt)).contiguous()  # (.., kt)
        y = torch.einsum('bntyxc,ykc->bntyxk', q, rel_pos_lookup(self.rel_pos_h, qh, kh)).contiguous()  # (.., kh)
        x = torch.einsum('bntyxc,xkc->bntyxk', q, rel_pos_lookup(self.rel_pos_w, qw, kw)).contiguous()  # (.., kw)
        bias = t[..., :, None, None] + y[..., None, :, None] + x[..., None, None, :]  # (B, h, qt, qh, qw, kt, kh, kw)
        bias = bias.view(B, h, qt * qh * qw, kt * kh * kw)                            # (B, h, Nq - cls, Nk - cls)
        return F.pad(bias, (num_cls, 0, num_cls, 0))                                  # (B, h, Nq, Nk)


class MultiscaleBlock(nn.Module):
    """One MViTv2 block (MultiTrain eq. 1): X1 = MHPA(LN(X)) + Pool(X); Block(X) = MLP(LN(X1)) + X1.

    Pool(X) is a max pool with the query stride (identity when the stride is 1), so that the skip lands on the
    attention's output grid. Where the width changes, the official code widens the skip with a Linear applied to
    LN(X) rather than X (eq. 1 does not say); we follow it."""

    def __init__(self, num_heads, dim_in, dim_out, q_stride, kv_stride, kernel, grid, rel_pos, residual_pool,
                 drop_path):
        super().__init__()
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim_in, eps=1e-6)
        self.attn = PoolingAttention(dim_in, dim_out, num_heads, q_stride, kv_stride, kernel, grid, rel_pos,
                                     residual_pool)
        self.skip_proj = nn.Linear(dim_in, dim_out) if dim_in != dim_out else None
        skip_kernel = [s + 1 if s > 1 else 1 for s in q_stride]
        skip_padding = [k // 2 for k in skip_kernel]
        self.skip_pool = None if max(q_stride) == 1 else nn.MaxPool3d(skip_kernel, q_stride, skip_padding)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = Mlp(dim_out, 4 * dim_out)

    def forward(self, x, grid, num_cls):
        x_norm = self.norm1(x)
        x_attn, attn_grid = self.attn(x_norm, grid, num_cls)                   # (B, Nq, dim_out)
        if self.skip_proj is not None:
            x = self.skip_proj(x_norm)                                         # (B, N, dim_out)
        if self.skip_pool is not None:
            x = pool_tokens(x[:, None], self.skip_pool, grid, num_cls)[0][:, 0]  # (B, Nq, dim_out)
        x = x + drop_path(x_attn, self.drop_path, self.training)              # X1, eq. 1
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
        return x, attn_grid


class MViT(nn.Module):
    """MViTv2 for (B, 3, H, W) images (one-frame videos) or (B, 3, T, H, W) videos -> (B, D) -> per-dataset logits.

    blocks is a block table (see MVIT_PRESETS). img_size ((H, W) or a side) and num_frames size the position
    tables; other input sizes work too (tables resampled), as long as the strides divide the token grid.
    rel_pos: decomposed relative position bias in every block (torchvision) instead of absolute separable
    space + time embeddings (MultiTrain). cls_token: read the class token (torchvision) instead of the mean of
    the last tokens (MultiTrain). residual_pool: MViTv2's pooled-query residual inside attention."""

    def __init__(self, num_classes, blocks, img_size=224, num_frames=16, rel_pos=True, cls_token=True,
                 residual_pool=True, kernel=(3, 3, 3), head='linear', drop_path=0.0, head_options=None,
                 grad_checkpoint=False):
        super().__init__()
        self.grad_checkpoint = grad_checkpoint              # recompute each block in backward (run_block)
        H, W = (img_size, img_size) if isinstance(img_size, int) else img_size
        dim = blocks[0][1]
        self.patch_embed = nn.Conv3d(3, dim, PATCH_KERNEL, stride=PATCH_STRIDE, padding=PATCH_PADDING)
        grid = tuple(ceil_div(n, s) for n, s in zip((num_frames, H, W), PATCH_STRIDE))  # tokens (T', H', W')
        self.pos_grid = grid
        self.num_cls = int(cls_token)
        self.cls_token = nn.Parameter(torch.zeros(dim)) if cls_token else None
        self.abs_pos = not rel_pos
        if self.abs_pos:
            self.pos_embed_time = nn.Parameter(torch.zeros(grid[0], dim))                  # (T', D)
            self.pos_embed_space = nn.Parameter(torch.zeros(grid[1] * grid[2], dim))       # (H'*W', D)
            self.pos_embed_cls = nn.Parameter(torch.zeros(dim)) if cls_token else None
        rates = [drop_path * i / max(len(blocks) - 1, 1) for i in range(len(blocks))]  # linearly increasing
        self.blocks = nn.ModuleList()
        for (heads, dim_in, dim_out, q_stride, kv_stride), rate in zip(blocks, rates):
            assert dim_in == dim, f'a block of width {dim_in} follows one of width {dim}'
            self.blocks.append(MultiscaleBlock(heads, dim_in, dim_out, q_stride, kv_stride, kernel, grid, rel_pos,
                                               residual_pool, rate))
            grid, dim = tuple(ceil_div(g, s) for g, s in zip(grid, q_stride)), dim_out
        self.num_features = dim                             # width of features(), what the heads read
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.heads = nn.ModuleDict({name: make_head(head, dim, c, **(head_options or {}))
                                    for name, c in num_classes.items()})
        self.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.rsplit('.', 1)[-1] in POSITION_PARAMS:
                nn.init.trunc_normal_(p, std=0.02)

    def abs_pos_embed(self, grid):
        """Separable absolute positions for a token grid (T, H, W): time[t] + space[h, w], (T*H*W, D).

        Tables built for another grid are resampled: time linearly, space bicubically (e.g. an image, T = 1)."""
        T0, H0, W0 = self.pos_grid
        time = resize_table(self.pos_embed_time, grid[0])                          # (T, D)
        space = self.pos_embed_space.view(H0, W0, -1)                               # (H0, W0, D)
        if grid[1:] != (H0, W0):
            space = space.permute(2, 0, 1)[None]                                    # (1, D, H0, W0)
            space = F.interpolate(space, size=grid[1:], mode='bicubic', align_corners=False)[0].permute(1, 2, 0)
        return (time[:, None, None] + space[None]).flatten(0, 2)                    # (T*H*W, D)

    def features(self, x):
        """Backbone features, (B, D): the final class token, or the mean over the last grid's tokens."""
        if x.ndim == 4:
            x = x.unsqueeze(2)                              # an image is a one-frame video: (B, 3, 1, H, W)
        x = self.patch_embed(x)                             # (B, D, T', H', W')
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)                    # (B, T'*H'*W', D)
        if self.abs_pos:
            x = x + self.abs_pos_embed(grid)
        if self.num_cls:
            cls = self.cls_token.expand(x.shape[0], 1, -1)  # (B, 1, D)
            if self.abs_pos:
                cls = cls + self.pos_embed_cls
            x = torch.cat([cls, x], dim=1)                  # (B, 1 + T'*H'*W', D)
        for block in self.blocks:
            x, grid = run_block(block, self.grad_checkpoint, x, grid, self.num_cls)
        x = self.norm(x)
        return x[:, 0] if self.num_cls else x.mean(dim=1)   # MultiTrain: no class token, mean over tokens

    def forward(self, x, dataset):
        """Logits of dataset `dataset`'s head."""
        return self.heads[dataset](self.features(x))


def build_model(cfg, num_classes):
    """The backbone named by cfg.backbone with one head per dataset; num_classes: {dataset name: C}."""
    # settings that a partial namespace (tests, tools) may lack take their config.py defaults
    head_options = dict(hidden=cfg.head_hidden, dropout=cfg.head_dropout, output_dropout=cfg.head_output_dropout)
    if cfg.backbone == 'mvit':
        # the time table covers the longest clip of the config (other lengths resample it)
        frames = max((spec['num_frames'] for spec in cfg.datasets.values() if 'num_frames' in spec), default=16)
        return MViT(num_classes, img_size=cfg.img_size, num_frames=frames, head=cfg.head, drop_path=cfg.drop_path,
                    head_options=head_options, grad_checkpoint=cfg.grad_checkpoint,
                    **MVIT_PRESETS[cfg.mvit_preset])
    return VisionTransformer(num_classes, img_size=cfg.img_size, patch_size=cfg.patch_size, dim=cfg.dim,
                             depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                             shift_div=cfg.shift_div, head=cfg.head, drop_path=cfg.drop_path,
                             head_options=head_options, grad_checkpoint=cfg.grad_checkpoint)


def configure_optimizer(model, lr, weight_decay, betas, device_type, kind='adamw', momentum=0.9, position_decay=False):
    """AdamW (kind='adamw') or SGD with momentum (kind='sgd', CoVeR), with weight decay on weight matrices and
    kernels only: not on biases and norms, and not on tokens and positions unless position_decay (MultiTrain's
    release decays them: ZERO_DECAY_POS_CLS False)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    is_position = lambda n: n.split('.')[-1] in POSITION_PARAMS  # also as step.model.*
    no_decay = lambda n, p: not (position_decay and is_position(n)) and (p.ndim < 2 or is_position(n))
    groups = [dict(params=[p for n, p in params if not no_decay(n, p)], weight_decay=weight_decay),
              dict(params=[p for n, p in params if no_decay(n, p)], weight_decay=0.0)]
    if kind == 'sgd':
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == 'cuda')
