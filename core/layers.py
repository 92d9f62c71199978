"""Equalised-learning-rate fully connected layer (StyleGAN2), shared by the mapping network, the affine style layers
and the tri-plane decoder. State-dict names (`weight`, `bias`) match EG3D's FullyConnectedLayer."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["FullyConnectedLayer", "leaky_relu_gain", "describe"]

leaky_relu_gain = math.sqrt(2.0)  # StyleGAN2's default gain for lrelu(alpha=0.2)


def describe(module: nn.Module, *names: str, **values) -> str:
    """A module's `extra_repr`: "name=value, ..." for the named attributes, then the given values."""
    return ", ".join([f"{n}={getattr(module, n)}" for n in names] + [f"{k}={v}" for k, v in values.items()])


class FullyConnectedLayer(nn.Module):
    """y = act(x W_eff^T + b_eff) * gain with W_eff = weight * lr_multiplier / sqrt(in_features), b_eff = bias * lr_mul.

    weight (out, in) is stored at scale 1/lr_multiplier (initialised randn / lr_multiplier), so the effective learning
    rate of every weight is the same regardless of fan-in (equalised learning rate).
    activation: 'linear' or 'lrelu' (slope 0.2, gain sqrt(2)).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"FullyConnectedLayer: unsupported activation {activation!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Float[Tensor, "... in"]) -> Float[Tensor, "... out"]:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        y = torch.nn.functional.linear(x, w, b)
        if self.activation == "lrelu":
            y = torch.nn.functional.leaky_relu(y, 0.2) * leaky_relu_gain
        return y

    def extra_repr(self) -> str:
        return describe(self, "in_features", "out_features", "activation")
