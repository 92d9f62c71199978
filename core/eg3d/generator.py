"""EG3D's TriPlaneGenerator: mapping -> StyleGAN2 synthesis of tri-planes -> volume rendering -> super-resolution.

    ws     = G.mapping(z, c)                          (N, num_ws, w_dim)       c: 25-float EG3D camera labels
    planes = G.synthesis_planes(ws)                   (N, 3, 32, 256, 256)     backbone image (N, 96, 256, 256) split
    out    = G.render_planes(planes, ws, cams)        image_raw (N, 3, R, R), image_depth (N, 1, R, R) [ray distance t],
                                                      image_features (N, 32, R, R), image (N, 3, S, S) after SR;
                                                      cams: a `Cameras` batch (Cameras.from_label(c))

`G.synthesis(ws, c)` runs the last two; `G(z, c)` all three. Images are roughly in [-1, 1]. The constructor takes
EG3D's own `_init_kwargs` (z_dim, c_dim, w_dim, img_resolution, img_channels, sr_num_fp16_res, mapping_kwargs,
rendering_kwargs, sr_kwargs, channel_base, channel_max, fused_modconv_default, num_fp16_res, conv_clamp), and the
state dict has exactly the official names and shapes (176 entries for FFHQ-512).

tristudio extensions (keyword-only, absent from official configs, official values by default): `plane_resolution`
(256), `plane_channels` (32), `neural_rendering_resolution` (64; EG3D keeps it as an attribute, 128 for the
released *-128 models).
"""

from __future__ import annotations

import copy
import json

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..cameras import Cameras
from ..layers import describe
from ..render.triplane import OSGDecoder, triplane_field
from ..render.volume import RenderOptions, render_triplanes
from .stylegan2 import Generator, MappingNetwork, SynthesisNetwork
from .superres import superresolution_class

__all__ = ["TriPlaneGenerator", "REQUIRED_RENDERING_KWARGS"]

REQUIRED_RENDERING_KWARGS = (
    "superresolution_module",
    "sr_antialias",
    "c_gen_conditioning_zero",
    "superresolution_noise_mode",
    "depth_resolution",
    "depth_resolution_importance",
    "ray_start",
    "ray_end",
    "box_warp",
)


def _plain(obj):
    """EasyDicts / tuples / numpy scalars -> JSON-able dicts, lists and Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


class TriPlaneGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        sr_num_fp16_res: int = 0,
        mapping_kwargs: dict | None = None,
        rendering_kwargs: dict | None = None,
        sr_kwargs: dict | None = None,
        *,
        plane_resolution: int = 256,
        plane_channels: int = 32,
        neural_rendering_resolution: int = 64,
        **synthesis_kwargs,
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        rendering_kwargs = dict(rendering_kwargs or {})
        sr_kwargs = dict(sr_kwargs or {})
        missing = [k for k in REQUIRED_RENDERING_KWARGS if k not in rendering_kwargs]
        if missing:
            raise ValueError(f"TriPlaneGenerator: rendering_kwargs lacks {missing} (see core/eg3d/presets.py)")
        self.init_kwargs = _plain(
            dict(
                z_dim=z_dim,
                c_dim=c_dim,
                w_dim=w_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                sr_num_fp16_res=sr_num_fp16_res,
                mapping_kwargs=mapping_kwargs,
                rendering_kwargs=rendering_kwargs,
                sr_kwargs=sr_kwargs,
                **synthesis_kwargs,
            )
        )
        if (plane_resolution, plane_channels, neural_rendering_resolution) != (256, 32, 64):
            self.init_kwargs.update(
                plane_resolution=plane_resolution,
                plane_channels=plane_channels,
                neural_rendering_resolution=neural_rendering_resolution,
            )
        json.dumps(self.init_kwargs)  # fail early on a config that cannot be stored

        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.plane_resolution, self.plane_channels = plane_resolution, plane_channels
        self.rendering_kwargs = copy.deepcopy(rendering_kwargs)
        self.neural_rendering_resolution = neural_rendering_resolution

        # StyleGAN2 backbone: its "image" is the three planes' features stacked, (N, 3 * C, P, P).
        synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=plane_resolution, img_channels=3 * plane_channels, **synthesis_kwargs
        )
        mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=synthesis.num_ws, **mapping_kwargs)
        self.backbone = Generator(synthesis, mapping)
        sr_cls = superresolution_class(rendering_kwargs["superresolution_module"])
        self.superresolution = sr_cls(
            channels=32,
            img_resolution=img_resolution,
            sr_num_fp16_res=sr_num_fp16_res,
            sr_antialias=rendering_kwargs["sr_antialias"],
            w_dim=w_dim,
            **sr_kwargs,
        )
        self.decoder = OSGDecoder(plane_channels, 64, 32, lr_multiplier=rendering_kwargs.get("decoder_lr_mul", 1))

    # ------------------------------------------------------------------------------------------- properties
    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    def render_options(self, deterministic: bool = False, **overrides) -> RenderOptions:
        """The volume renderer's settings from `rendering_kwargs`."""
        return RenderOptions.from_eg3d(self.rendering_kwargs, deterministic=deterministic, **overrides)

    # ------------------------------------------------------------------------------------------- EG3D API
    def mapping(
        self,
        z: Float[Tensor, "n z"],
        c: Float[Tensor, "n 25"],  # conditioning camera label (16 cam2world + 9 intrinsics)
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Float[Tensor, "n num_ws w"]:
        """z, camera label -> ws. The label is zeroed if `c_gen_conditioning_zero`, scaled by `c_scale` (EG3D: 0 if
        absent)."""
        if self.rendering_kwargs["c_gen_conditioning_zero"]:
            c = torch.zeros_like(c)
        c = c * self.rendering_kwargs.get("c_scale", 0)
        return self.backbone.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )

    def synthesis(
        self,
        ws: Float[Tensor, "n num_ws w"],
        c: Float[Tensor, "n 25"],
        neural_rendering_resolution: int | None = None,
        noise_mode: str = "const",
        deterministic: bool = False,
        return_planes: bool = False,
        update_emas: bool = False,
        **block_kwargs,
    ) -> dict[str, Tensor]:
        """ws + cameras -> {'image', 'image_raw', 'image_depth'} (+ 'planes'). As EG3D, a given
        `neural_rendering_resolution` becomes the generator's new default."""
        if neural_rendering_resolution is not None:
            self.neural_rendering_resolution = int(neural_rendering_resolution)
        planes = self.synthesis_planes(ws, noise_mode=noise_mode, update_emas=update_emas, **block_kwargs)
        cameras = Cameras.from_label(torch.as_tensor(c).to(planes.device, torch.float32))
        out = self.render_planes(planes, ws, cameras, deterministic=deterministic, **block_kwargs)
        if return_planes:
            out["planes"] = planes
        return out

    def forward(
        self,
        z: Float[Tensor, "n z"],
        c: Float[Tensor, "n 25"],  # conditions the mapping and poses the render (mapping + synthesis to split them)
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        neural_rendering_resolution: int | None = None,
        update_emas: bool = False,
        **synthesis_kwargs,
    ) -> dict[str, Tensor]:
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(
            ws, c, neural_rendering_resolution=neural_rendering_resolution, update_emas=update_emas, **synthesis_kwargs
        )

    # ------------------------------------------------------------------------------------------- viewer API
    def synthesis_planes(
        self, ws: Float[Tensor, "n num_ws w"], noise_mode: str = "const", update_emas: bool = False, **block_kwargs
    ) -> Float[Tensor, "n 3 c p p"]:
        """The tri-planes, (N, 3, C, P, P) in EG3D's plane order (xy, xz, zx); reusable for any camera."""
        img = self.backbone.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas, **block_kwargs)
        n, _, h, w = img.shape
        return img.view(n, 3, self.plane_channels, h, w)

    def render_planes(
        self,
        planes: Float[Tensor, "n 3 c p p"],
        ws: Float[Tensor, "n num_ws w"] | None,
        cameras: Cameras,
        neural_rendering_resolution: int | None = None,
        deterministic: bool = False,
        run_superres: bool = True,
        chunk: int | None = None,
        options: dict | None = None,
        **block_kwargs,
    ) -> dict[str, Tensor]:
        """Render cached planes from a `Cameras` batch (one camera per plane set), then super-resolve
        with the last w. (EG3D labels: `Cameras.from_label(c)`.)

        Returns image_raw (N, 3, R, R), image_features (N, 32, R, R), image_depth (N, 1, R, R) (ray distance),
        image_opacity (N, 1, R, R) and, with run_superres (needs ws), image (N, 3, S, S). `chunk`: rays per renderer
        batch (default: RenderOptions.chunk); `options`: RenderOptions overrides for this call (the viewer's samples
        per ray and ray interval). Does not change `self.neural_rendering_resolution`. `deterministic`: mid-interval
        coarse depths, fixed importance quantiles and no density noise (EG3D always jitters).
        """
        if not isinstance(cameras, Cameras):
            raise TypeError(
                f"render_planes takes a Cameras batch, got {type(cameras).__name__} "
                "(for (N, 25) EG3D labels use Cameras.from_label(c))"
            )
        res = int(neural_rendering_resolution or self.neural_rendering_resolution)
        if len(cameras) != planes.shape[0]:
            raise ValueError(f"render_planes: {planes.shape[0]} plane sets but {len(cameras)} cameras")
        overrides = {} if chunk is None else {"chunk": chunk}
        opts = self.render_options(deterministic=deterministic, **overrides, **(options or {}))
        density_noise = 0.0 if deterministic else float(self.rendering_kwargs.get("density_noise", 0) or 0)
        r = render_triplanes(planes, self.decoder, cameras, res, opts, density_noise=density_noise)
        feature_image = r["features"]  # (n, 32, R, R), in [-1, 1]
        out = {
            "image_raw": feature_image[:, :3],
            "image_depth": r["depth"],
            "image_features": feature_image,
            "image_opacity": r["opacity"],
        }
        if run_superres:
            if ws is None:
                raise ValueError("render_planes: run_superres needs ws (the SR uses the last w)")
            out["image"] = self.superresolution(
                out["image_raw"],
                feature_image,
                ws,
                noise_mode=self.rendering_kwargs["superresolution_noise_mode"],
                **block_kwargs,
            )
        return out

    def sample_mixed(
        self,
        coordinates: Float[Tensor, "n p 3"],
        directions: Float[Tensor, "n p 3"],
        ws: Tensor,
        noise_mode: str = "const",
        planes: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Decoder outputs {sigma (N, P, 1) raw, rgb (N, P, 32)} at world points (EG3D's shape-extraction hook)."""
        if planes is None:
            planes = self.synthesis_planes(ws, noise_mode=noise_mode)
        field = triplane_field(planes, self.decoder, self.rendering_kwargs["box_warp"])
        return field(coordinates, directions)

    def extra_repr(self) -> str:
        planes = f"3x{self.plane_channels}x{self.plane_resolution}^2"
        nrr = self.neural_rendering_resolution
        return describe(
            self, "z_dim", "c_dim", "w_dim", "img_resolution", planes=planes, neural_rendering_resolution=nrr
        )
