"""StyleGAN2 generator networks as EG3D uses them (mapping, modulated convolution, FIR resampling, synthesis).

Written from the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") and the
official code's layer definitions (NVlabs/eg3d `training/networks_stylegan2.py`, `torch_utils/ops/upfirdn2d.py`,
`conv2d_resample.py`, `bias_act.py`). Module and parameter names equal NVlabs' so official state dicts load as is.

Images are NCHW float32. A block at resolution R maps features (N, C_in, R/2, R/2) to (N, C_out, R, R) and
accumulates the skip-architecture image (N, img_channels, R, R). Everything runs in float32 (EG3D's fp16 blocks
only change dtype on CUDA; `conv_clamp` is kept because it changes the numbers).

Mapping:      z -> normalise 2nd moment; c -> embed (FC) -> normalise; concat -> L lrelu FCs (lr x0.01) -> w
Modulation:   s = A(w) (affine, bias init 1);     w'_oikk = w_oikk * s_i
Demodulation: d_o = 1 / sqrt(sum_ikk w'^2 + 1e-8); w''_oikk = w'_oikk * d_o
Synthesis:    y = lrelu(conv(x, w'') + noise * strength + b) * sqrt(2)  (optionally clamped)
ToRGB:        s = A(w) / sqrt(I k^2), no demodulation, linear + bias
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..layers import FullyConnectedLayer, describe, leaky_relu_gain

__all__ = [
    "normalize_2nd_moment",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "conv2d_resample",
    "modulated_conv2d",
    "MappingNetwork",
    "SynthesisLayer",
    "ToRGBLayer",
    "SynthesisBlock",
    "SynthesisNetwork",
    "Generator",
]


def normalize_2nd_moment(x: Float[Tensor, "n f"], dim: int = 1, eps: float = 1e-8) -> Float[Tensor, "n f"]:
    """x / sqrt(mean(x^2) + eps): puts latents (and label embeddings) on the unit hypersphere * sqrt(F)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------------- FIR resampling


def setup_filter(taps=(1, 3, 3, 1)) -> Float[Tensor, "k k"]:
    """Separable low-pass FIR filter: outer product of `taps` with itself, normalised to sum 1 ([1,3,3,1] -> 4x4)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def _pad4(padding) -> tuple[int, int, int, int]:
    """int | (x, y) | (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding}")
    return tuple(padding)  # type: ignore[return-value]


def _is_nhwc(x: Tensor) -> bool:
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _like(w: Tensor, x: Tensor) -> Tensor:
    """A conv weight in the memory format of the activations: a channels-last x with an NCHW weight makes PyTorch
    copy x to NCHW (and back) around every convolution."""
    if _is_nhwc(x):
        return w.contiguous(memory_format=torch.channels_last)
    return w.contiguous()


def upfirdn2d(
    x: Float[Tensor, "n c h w"],
    f: Float[Tensor, "kh kw"] | None,
    up: int = 1,
    down: int = 1,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> Float[Tensor, "n c h2 w2"]:
    """Upsample (insert up-1 zeros), pad (negative = crop), FIR-filter, downsample (keep every down-th pixel).

    The filter is applied as a true convolution (flipped) unless `flip_filter`, scaled by gain^(ndim/2) so that a
    2-D filter gets `gain` once. Per channel (depthwise). Output size: (H * up + y0 + y1 - kh + 1) // down (rounded up).
    """
    n, c, h, w = x.shape
    x0, x1, y0, y1 = _pad4(padding)
    if f is None:
        f = torch.ones(1, 1, dtype=x.dtype, device=x.device)
    # 1. zero insertion: x[i] lands at up * i
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    # 2. pad / crop
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    # 3. filter (depthwise), as a convolution
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:  # separable taps
        x = F.conv2d(x, _like(f.view(1, 1, 1, -1).expand(c, 1, 1, -1), x), groups=c)
        x = F.conv2d(x, _like(f.view(1, 1, -1, 1).expand(c, 1, -1, 1), x), groups=c)
    else:
        x = F.conv2d(x, _like(f[None, None].expand(c, 1, *f.shape), x), groups=c)
    # 4. decimation
    return x[:, :, ::down, ::down]


def upsample2d(x: Float[Tensor, "n c h w"], f: Float[Tensor, "k k"], up: int = 2) -> Float[Tensor, "n c hu wu"]:
    """2x (up x) FIR upsampling keeping the signal level (gain up^2), output exactly (H*up, W*up).

    Same result as upfirdn2d(x, f, up, padding=((k+up-1)//2, (k-up)//2, ...), gain=up^2), computed polyphase as a
    depthwise transposed convolution (no multiplications with inserted zeros).
    """
    c = x.shape[1]
    k = f.shape[-1]
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    # transposed conv = full convolution of the zero-inserted signal; crop so that it starts at index k-1-p0.
    crop = k - 1 - p0
    if crop != k - 1 - p1 - (up - 1):  # asymmetric crop (not the case for even filters with up=2): generic path
        return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)
    kern = (f * (up * up)).to(x.dtype)[None, None].expand(c, 1, k, k)
    return F.conv_transpose2d(x, _like(kern, x), stride=up, padding=crop, groups=c)


def conv2d_resample(
    x: Float[Tensor, "n ci h w"],
    w: Float[Tensor, "co ci_g kh kw"],
    f: Float[Tensor, "k k"] | None = None,
    up: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
    bias: Tensor | None = None,
) -> Float[Tensor, "n co ho wo"]:
    """Convolution with optional 2x FIR upsampling, as StyleGAN2's conv2d_resample (down = 1 only).

    up = 1: plain conv2d with `padding` (flip_weight=True: correlation, like F.conv2d; False: true convolution).
    up > 1: transposed strided convolution (the weight used *unflipped* when flip_weight=False, i.e. as F's transposed
    conv expects), then the FIR filter with gain up^2 and the residual padding; equals upsample-then-conv with the
    padding counted on the upsampled image. `bias` (co,) is added to the result (inside the last convolution).
    """
    co, ci_g, kh, kw = w.shape
    if up == 1:
        if not flip_weight and (kh > 1 or kw > 1):
            w = w.flip([2, 3])
        return F.conv2d(x, _like(w, x), bias, padding=padding, groups=groups)
    if f is None:
        raise ValueError("conv2d_resample: up > 1 needs a resampling filter")
    fh, fw = f.shape[0], f.shape[-1]
    x0 = padding + (fw + up - 1) // 2 - (kw - 1)
    x1 = padding + (fw - up) // 2 - (kw - up)
    y0 = padding + (fh + up - 1) // 2 - (kh - 1)
    y1 = padding + (fh - up) // 2 - (kh - up)
    if kw == 1 and kh == 1:  # 1x1: convolve first, then upsample
        x = F.conv2d(x, _like(w, x), groups=groups)
        x = upfirdn2d(x, f, up=up, padding=(x0 + kw - 1, x1 + kw - up, y0 + kh - 1, y1 + kh - up), gain=up * up)
        return x if bias is None else x + bias.reshape(1, -1, 1, 1)
    # transposed conv weight: (ci, co/groups, kh, kw)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, co // groups, ci_g, kh, kw).transpose(1, 2).reshape(groups * ci_g, co // groups, kh, kw)
    if flip_weight:  # transposed conv is a true convolution; flip to get correlation semantics
        wt = wt.flip([2, 3])
    pxt, pyt = max(min(-x0, -x1), 0), max(min(-y0, -y1), 0)
    x = F.conv_transpose2d(x, _like(wt, x), stride=up, padding=(pyt, pxt), groups=groups)
    return _fir(x, f, (x0 + pxt, x1 + pxt, y0 + pyt, y1 + pyt), gain=up * up, bias=bias)


def _fir(x: Tensor, f: Tensor, padding: tuple[int, int, int, int], gain: float, bias: Tensor | None = None) -> Tensor:
    """Depthwise FIR filter (true convolution) with zero padding, no resampling, + optional per-channel bias.
    Fast path of upfirdn2d(up=down=1)."""
    x0, x1, y0, y1 = padding
    if min(padding) < 0 or x0 != x1 or y0 != y1:
        x = upfirdn2d(x, f, padding=padding, gain=gain)
        return x if bias is None else x + bias.reshape(1, -1, 1, 1)
    c = x.shape[1]
    kern = (f * gain).flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, _like(kern, x), bias, padding=(y0, x0), groups=c)


# ----------------------------------------------------------------------------------------------- modulated conv


def modulated_conv2d(
    x: Float[Tensor, "n i h w"],
    weight: Float[Tensor, "o i k k"],
    styles: Float[Tensor, "n i"],
    noise: Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    bias: Tensor | None = None,
) -> Float[Tensor, "n o ho wo"]:
    """StyleGAN2's weight modulation / demodulation, then convolution (optionally 2x upsampling) and additive noise.

    fused: build per-sample weights w''[n] and run one grouped convolution (groups = N).
    non-fused: scale the input channels by s, convolve with the shared weight, scale the output channels by d
    (the same linear map, cheaper for large batches). Noise is added after demodulation; `bias` (o,), when given, is
    added too (folded into the convolution, which saves a pass over the activations).
    """
    n = x.shape[0]
    o, i, kh, kw = weight.shape
    if styles.shape != (n, i):
        raise ValueError(f"modulated_conv2d: styles {tuple(styles.shape)} do not match input {tuple(x.shape)}")

    # Modulation: w'[n,o,i,:,:] = w[o,i,:,:] * s[n,i]
    w_mod = None
    dcoefs = None
    if demodulate or fused_modconv:
        w_mod = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # (n, o, i, k, k)
    # Demodulation: d[n,o] = 1 / sqrt(sum_{i,k,k} w'^2 + 1e-8)
    if demodulate:
        dcoefs = (w_mod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (n, o)

    if fused_modconv and n > 1 and _is_nhwc(x):
        # A grouped convolution over a channels-last batch would force NCHW copies and slow NCHW kernels; the
        # shared-weight formulation below is the same linear map (equal up to float rounding).
        fused_modconv = False
    if not fused_modconv:
        x = x * styles.reshape(n, i, 1, 1)
        x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.reshape(n, o, 1, 1)
        if noise is not None:
            x = x + noise
        return x if bias is None else x + bias.reshape(1, -1, 1, 1)

    if demodulate:
        w_mod = w_mod * dcoefs.reshape(n, o, 1, 1, 1)
    if n == 1:  # one sample: a plain convolution with its weights (a reshape would spoil channels-last strides)
        y = conv2d_resample(x, w_mod[0], resample_filter, up=up, padding=padding, flip_weight=flip_weight, bias=bias)
    else:  # fused: the batch becomes channel groups of one image
        xg = x.reshape(1, n * i, *x.shape[2:])
        y = conv2d_resample(
            xg,
            w_mod.reshape(n * o, i, kh, kw),
            resample_filter,
            up=up,
            padding=padding,
            groups=n,
            flip_weight=flip_weight,
            bias=None if bias is None else bias.repeat(n),
        )
        y = y.reshape(n, o, *y.shape[2:])
    if noise is not None:
        y = y + noise
    return y


def bias_act(
    x: Tensor, b: Tensor | None, activation: str, gain: float, clamp: float | None, inplace: bool = False
) -> Tensor:
    """act(x + b) * gain, clamped to [-clamp, clamp] when given. activation: 'linear' | 'lrelu' (slope 0.2).

    b = None: the bias is already in x. inplace: x is a fresh temporary that may be overwritten (inference only).
    """
    if activation not in ("linear", "lrelu"):
        raise ValueError(f"unsupported activation {activation!r}")
    if b is not None:
        x = x + b.reshape(1, -1, 1, 1)
        inplace = True
    if not inplace or (torch.is_grad_enabled() and x.requires_grad):
        x = F.leaky_relu(x, 0.2) if activation == "lrelu" else x
        x = x * gain if gain != 1 else x
        return x.clamp(-clamp, clamp) if clamp is not None and clamp >= 0 else x
    # inference: in place on the fresh sum (these tensors reach 128 x 512 x 512 floats in the super-resolution)
    if gain != 1:
        x.mul_(gain)  # lrelu(v) * g == lrelu(v * g) for g > 0
    if activation == "lrelu":
        F.leaky_relu_(x, 0.2)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------- mapping


class MappingNetwork(nn.Module):
    """(z (N, z_dim), c (N, c_dim)) -> ws (N, num_ws, w_dim) (or (N, w_dim) when num_ws is None).

    Keeps `w_avg` (w_dim,), the running mean of w (decay `w_avg_beta` per call with update_emas=True), used for the
    truncation trick w <- w_avg + psi * (w - w_avg) on the first `truncation_cutoff` ws (all when None).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        if c_dim == 0:
            embed_features = 0
        layer_features = w_dim if layer_features is None else layer_features
        if z_dim + embed_features == 0:
            raise ValueError("MappingNetwork needs z_dim > 0 or c_dim > 0")
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Float[Tensor, "n z"] | None,
        c: Float[Tensor, "n c"] | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Float[Tensor, "n num_ws w"]:
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"mapping: z must be (N, {self.z_dim}), got {None if z is None else tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"mapping: c must be (N, {self.c_dim}), got {None if c is None else tuple(c.shape)}")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_emas and self.w_avg_beta is not None:
            with torch.no_grad():  # w_avg <- beta * w_avg + (1 - beta) * mean(w)
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # (n, num_ws, w)

        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("mapping: truncation needs a tracked w_avg (w_avg_beta is None)")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return describe(self, "z_dim", "c_dim", "w_dim", "num_ws")


# ----------------------------------------------------------------------------------------------- synthesis layers


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise + bias + lrelu * sqrt(2): (N, I, R/up, R/up) -> (N, O, R, R)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,  # the rest by name: w_dim and resolution are both ints
        w_dim: int,
        resolution: int,  # output side R (sizes the constant noise)
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.up, self.use_noise, self.activation = resolution, up, use_noise, activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = leaky_relu_gain if activation == "lrelu" else 1.0
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: Tensor, w: Float[Tensor, "n w"], noise_mode: str = "random", fused_modconv: bool = True, gain=1.0
    ) -> Tensor:
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        r_in = self.resolution // self.up
        if x.shape[1:] != (self.in_channels, r_in, r_in):
            raise ValueError(f"SynthesisLayer: expected (N, {self.in_channels}, {r_in}, {r_in}), got {tuple(x.shape)}")
        styles = self.affine(w)  # (n, i): s = A(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            r = self.resolution
            noise = torch.randn([x.shape[0], 1, r, r], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
            bias=self.bias,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, None, self.activation, self.act_gain * gain, clamp, inplace=True)

    def extra_repr(self) -> str:
        return describe(self, "in_channels", "out_channels", "w_dim", "resolution", "up")


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) k x k conv to image channels, + bias: (N, I, R, R) -> (N, img_channels, R, R)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim, self.conv_clamp = in_channels, out_channels, w_dim, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Float[Tensor, "n w"], fused_modconv: bool = True) -> Tensor:
        styles = self.affine(w) * self.weight_gain  # equalised LR folded into the style
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv, bias=self.bias)
        return bias_act(x, None, "linear", 1.0, self.conv_clamp, inplace=True)

    def extra_repr(self) -> str:
        return describe(self, "in_channels", "out_channels", "w_dim")


_NHWC = torch.channels_last


def _resolve_fused(fused_modconv, default, training: bool) -> bool:
    if fused_modconv is None:
        fused_modconv = default
    if fused_modconv == "inference_only":
        fused_modconv = not training
    return bool(fused_modconv)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network, skip architecture.

    in_channels == 0: the first block, starting from a learned constant (out_channels, R, R) and one conv (conv1).
    Otherwise conv0 (2x up, unless `up=1`) and conv1. ToRGB when skip/last; the incoming image is FIR-upsampled
    (when `up=2`) and the block's ToRGB output is added. Consumes num_conv + num_torgb ws (its torgb w is shared with
    the next block's first conv).
    """

    def __init__(
        self,
        in_channels: int,  # 0: the first block, which starts from a learned constant
        out_channels: int,
        *,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: Literal["orig", "skip"] = "skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = 256,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default=True,
        up: int = 2,
        **layer_kwargs,
    ):
        super().__init__()
        if architecture not in ("orig", "skip"):
            raise ValueError(f"SynthesisBlock: architecture {architecture!r} not supported (EG3D uses 'skip')")
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16  # informational: we always compute in float32
        self.fused_modconv_default = fused_modconv_default
        self.up = up
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                up=up,
                resample_filter=resample_filter,
                conv_clamp=conv_clamp,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, **layer_kwargs
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Float[Tensor, "n k w"],
        fused_modconv=None,
        update_emas: bool = False,
        force_fp32: bool = True,
        **layer_kwargs,
    ) -> tuple[Tensor, Tensor | None]:
        if ws.ndim != 3 or ws.shape[1] != self.num_conv + self.num_torgb or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"SynthesisBlock b{self.resolution}: ws must be (N, {self.num_conv + self.num_torgb}, "
                f"{self.w_dim}), got {tuple(ws.shape)}"
            )
        fused = _resolve_fused(fused_modconv, self.fused_modconv_default, self.training)
        w_iter = iter(ws.unbind(dim=1))
        # Activations are kept channels-last: CPU (oneDNN) convolutions, transposed convolutions and above all the
        # depthwise FIR filters run several times faster in NHWC than in NCHW.
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=_NHWC)
            x = self.conv1(x, next(w_iter), fused_modconv=fused, **layer_kwargs)
        else:
            r_in = self.resolution // self.up
            if x is None or x.shape[1:] != (self.in_channels, r_in, r_in):
                raise ValueError(
                    f"SynthesisBlock b{self.resolution}: expected x (N, {self.in_channels}, {r_in}, "
                    f"{r_in}), got {None if x is None else tuple(x.shape)}"
                )
            x = self.conv0(x.float().contiguous(memory_format=_NHWC), next(w_iter), fused_modconv=fused, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused, **layer_kwargs)
        if img is not None and self.up > 1:
            img = upsample2d(img, self.resample_filter, up=self.up)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return describe(self, "resolution", "architecture", "up")


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, R, R); blocks b4 ... bR with min(channel_base / r,
    channel_max) channels at resolution r."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        **block_kwargs,
    ):
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"SynthesisNetwork: img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=(res == img_resolution),
                use_fp16=(res >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: Float[Tensor, "n num_ws w"], **block_kwargs) -> Float[Tensor, "n img_channels r r"]:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis: ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, **block_kwargs)
        return img.contiguous()

    def extra_repr(self) -> str:
        return describe(self, "w_dim", "num_ws", "img_resolution", "img_channels")


class Generator(nn.Module):
    """StyleGAN2's generator as EG3D's tri-plane backbone: `mapping` (z, c -> ws) and `synthesis` (ws -> the stacked
    planes' image) under EG3D's state-dict names (backbone.mapping.*, backbone.synthesis.*). TriPlaneGenerator builds
    the two networks and runs them in turn."""

    def __init__(self, synthesis: SynthesisNetwork, mapping: MappingNetwork):
        super().__init__()
        self.synthesis = synthesis  # registered first, as in EG3D's state dict
        self.mapping = mapping
        self.num_ws = synthesis.num_ws
