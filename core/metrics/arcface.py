"""ArcFace identity embeddings from a user's own weights (none ship: no ArcFace weights can be had here).

Two file kinds are read:
  * insightface-style ONNX (e.g. `w600k_r50.onnx`, `glintr100.onnx`): run with onnxruntime on the CPU (optional
    dependency: `pip install onnxruntime`);
  * arcface_torch iresnet PyTorch weights (`backbone.pth`, or a .safetensors of the same state dict): loaded into
    `IResNet` below, written here in plain torch with the same module names, so the state-dict keys and shapes match
    insightface's (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.weight` (512, 25088), `features.weight`, ...).
    The depth (18/34/50/100/200) is read off the number of blocks in the state dict.

Input: faces as (n, 3, H, W) RGB in [0, 1]; they are resized to 112 x 112 and normalised to [-1, 1] ((x - 0.5) / 0.5,
insightface's convention). Output: (n, 512) L2-normalised embeddings; identity similarity is their dot product.
Cropping / alignment is the caller's (EG3D crops FFHQ-aligned faces; the heads worlds are already framed alike).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .convnets import resize
from .weights import read_state_dict

__all__ = ["IResNet", "IRESNET_LAYERS", "iresnet", "layers_from_state_dict", "load_arcface", "ArcFaceError"]

IRESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}
INPUT_SIZE = 112


class ArcFaceError(ValueError):
    """The ArcFace weights cannot be used (missing, unreadable, unknown layout)."""


class _Block(nn.Module):
    """Pre-activation basic block: BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv (stride) -> BN, plus the shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface's iresnet: (n, 3, 112, 112) in [-1, 1] -> (n, 512) (not normalised; BatchNorm1d features)."""

    def __init__(self, layers=IRESNET_LAYERS[50], num_features: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            seq = [_Block(cin, planes, 2)] + [_Block(planes, planes, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*seq))
            cin = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)  # 112 px / 2^4 = 7
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward(self, x: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(depth: int = 50) -> IResNet:
    if depth not in IRESNET_LAYERS:
        raise ArcFaceError(f"no iresnet-{depth}; known depths {sorted(IRESNET_LAYERS)}")
    return IResNet(IRESNET_LAYERS[depth])


def layers_from_state_dict(state: dict) -> tuple[int, int, int, int]:
    """Blocks per stage, counted from `layerK.I.conv1.weight` keys."""
    counts = []
    for k in range(1, 5):
        idx = {int(key.split(".")[1]) for key in state if key.startswith(f"layer{k}.") and key.endswith("conv1.weight")}
        counts.append(len(idx))
    return tuple(counts)


def _prepare(images: Tensor) -> Tensor:
    return (resize(images.float(), INPUT_SIZE) - 0.5) / 0.5


class _TorchArcFace:
    def __init__(self, net: IResNet):
        self.net = net.eval()
        self.kind = "iresnet"

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        return F.normalize(self.net(_prepare(images)), dim=-1)


class _OnnxArcFace:
    def __init__(self, path: Path):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArcFaceError(f"{path}: reading ONNX ArcFace needs onnxruntime (pip install onnxruntime)") from None
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ArcFaceError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
        self.input = self.session.get_inputs()[0].name
        self.kind = "onnx"

    def __call__(self, images: Tensor) -> Tensor:
        out = self.session.run(None, {self.input: _prepare(images).numpy()})[0]
        return F.normalize(torch.from_numpy(out).float(), dim=-1)


def load_arcface(path: str | Path | None):
    """A callable (n, 3, H, W) in [0, 1] -> (n, 512) unit embeddings, from an .onnx / .pth / .pt / .safetensors file.

    Raises ArcFaceError with the expected path when the file is missing or unreadable."""
    if path is None:
        raise ArcFaceError(
            "no ArcFace weights: pass --arcface PATH (insightface ONNX such as w600k_r50.onnx, or arcface_torch "
            "iresnet weights backbone.pth / .safetensors); none ship with tristudio"
        )
    path = Path(path)
    if not path.is_file():
        raise ArcFaceError(f"ArcFace weights not found: expected a file at {path}")
    if path.suffix.lower() == ".onnx":
        return _OnnxArcFace(path)
    state = read_state_dict(path, "iresnet weights", ArcFaceError)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if "fc.weight" not in state:
        raise ArcFaceError(f"{path}: not an iresnet state dict (no fc.weight); expected arcface_torch backbone weights")
    layers = layers_from_state_dict(state)
    net = IResNet(layers, num_features=state["fc.weight"].shape[0])
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArcFaceError(f"{path}: iresnet layout {layers} does not match the weights ({first})") from None
    return _TorchArcFace(net)
