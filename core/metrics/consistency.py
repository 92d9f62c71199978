"""Multi-view geometric consistency of rendered depth (EG3D's image_depth is the ray distance t, not camera z).

Reprojection (generated heads, no ground truth): every foreground pixel p of view a is lifted to the world point
X = o_a + t_a(p) d_a(p), projected into view b at pixel q, and compared with view b's own depth there:

    depth error  e_d(p) = | |X - o_b| - t_b(q) |              (t_b bilinearly sampled at q)
    normal error e_n(p) = angle(n_a(p), n_b(q))               (normals from the lifted point maps, world space)

Pixels that leave b's image, land on b's background (or within a pixel of it), or are hidden in b
(|X - o_b| > t_b(q) + occlusion_tol) are left out; the report gives the fraction kept.
Against known geometry (procedural worlds): e_d = |t - t_gt|, e_n = angle(n, n_gt) over pixels foreground in both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from ..cameras import Cameras, project_points

__all__ = ["lift_depth", "normals_from_points", "reprojection_error", "geometry_error", "generator_consistency"]


def lift_depth(depth: Float[Tensor, "n 1 h w"], cameras: Cameras) -> Float[Tensor, "n h w 3"]:
    """World points o + t d for each pixel-centre ray (t = ray distance)."""
    n, _, h, w = depth.shape
    rays = cameras.rays(h, w)
    pts = rays.origins + rays.directions * depth.reshape(n, h * w, 1)
    return pts.reshape(n, h, w, 3)


def normals_from_points(points: Float[Tensor, "n h w 3"], cameras: Cameras) -> Float[Tensor, "n h w 3"]:
    """Unit normals from central differences of the point map, oriented towards the camera (edges replicated)."""
    p = F.pad(points.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate").permute(0, 2, 3, 1)
    dx = p[:, 1:-1, 2:] - p[:, 1:-1, :-2]
    dy = p[:, 2:, 1:-1] - p[:, :-2, 1:-1]
    nrm = F.normalize(torch.cross(dx, dy, dim=-1), dim=-1)
    to_cam = cameras.origins[:, None, None, :] - points
    flip = (nrm * to_cam).sum(-1, keepdim=True) < 0
    return torch.where(flip, -nrm, nrm)


def _sample(img: Float[Tensor, "n c h w"], uv: Float[Tensor, "n p 2"]) -> Float[Tensor, "n p c"]:
    grid = (uv * 2 - 1)[:, :, None, :]  # normalised [0, 1] image coords -> grid_sample's [-1, 1] (pixel centres)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)[..., 0].transpose(1, 2)


def reprojection_error(
    depth_a: Float[Tensor, "n 1 h w"],
    cams_a: Cameras,
    mask_a: Bool[Tensor, "n 1 h w"],
    depth_b: Float[Tensor, "n 1 h w"],
    cams_b: Cameras,
    mask_b: Bool[Tensor, "n 1 h w"],
    occlusion_tol: float = 0.05,
) -> dict[str, float]:
    """Mean depth error (ray-distance units) and mean normal angle (degrees) of view a reprojected into view b."""
    n, _, h, w = depth_a.shape
    pa = lift_depth(depth_a, cams_a)  # (n, h, w, 3)
    na = normals_from_points(pa, cams_a)
    pb = lift_depth(torch.where(mask_b, depth_b, torch.zeros_like(depth_b)), cams_b)
    nb = normals_from_points(pb, cams_b)
    x = pa.reshape(n, h * w, 3)
    uv, z = project_points(x, cams_b)  # (n, p, 2) in [0, 1], camera z
    inside = (uv >= 0).all(-1) & (uv <= 1).all(-1) & (z > 0)
    fg_b = _sample(mask_b.float(), uv)[..., 0]  # 1 inside b's foreground, < 1 near its silhouette
    t_b = _sample(torch.where(mask_b, depth_b, torch.zeros_like(depth_b)), uv)[..., 0]
    dist_b = (x - cams_b.origins[:, None, :]).norm(dim=-1)
    valid = mask_a.reshape(n, -1) & inside & (fg_b > 0.999) & (dist_b <= t_b + occlusion_tol)
    e_d = (dist_b - t_b).abs()
    n_b = F.normalize(_sample(nb.permute(0, 3, 1, 2), uv), dim=-1)
    cos = (na.reshape(n, -1, 3) * n_b).sum(-1).clamp(-1, 1)
    e_n = torch.rad2deg(torch.arccos(cos))
    k = int(valid.sum())
    if k == 0:
        return {"depth_error": math.nan, "normal_error_deg": math.nan, "valid_fraction": 0.0}
    return {
        "depth_error": float(e_d[valid].mean()),
        "normal_error_deg": float(e_n[valid].mean()),
        "valid_fraction": k / max(int(mask_a.sum()), 1),
    }


def geometry_error(
    depth: Float[Tensor, "n 1 h w"],
    cameras: Cameras,
    mask: Bool[Tensor, "n 1 h w"],
    depth_gt: Float[Tensor, "n 1 h w"],
    normals_gt: Float[Tensor, "n h w 3"],
    mask_gt: Bool[Tensor, "n 1 h w"],
) -> dict[str, float]:
    """Depth and normal error against known geometry (e.g. core/worlds' sphere-traced depth and SDF normals)."""
    valid = (mask & mask_gt)[:, 0]
    nrm = normals_from_points(lift_depth(depth, cameras), cameras)
    e_d = (depth - depth_gt).abs()[:, 0]
    # interior pixels only for normals (finite differences straddle the silhouette at the border)
    interior = -F.max_pool2d(-(mask & mask_gt).float(), 3, stride=1, padding=1)[:, 0] > 0.5
    e_n = torch.rad2deg(torch.arccos((nrm * normals_gt).sum(-1).clamp(-1, 1)))
    if int(valid.sum()) == 0:
        return {"depth_error": math.nan, "normal_error_deg": math.nan, "valid_fraction": 0.0}
    return {
        "depth_error": float(e_d[valid].mean()),
        "normal_error_deg": float(e_n[interior].mean()) if int(interior.sum()) else math.nan,
        "valid_fraction": float(valid.float().mean()),
    }


@torch.no_grad()
def generator_consistency(
    G,
    seeds: list[int],
    yaws=(-0.4, -0.2, 0.0, 0.2, 0.4),
    pitch: float = 0.0,
    resolution: int | None = None,
    opacity_threshold: float = 0.5,
) -> dict[str, float]:
    """Render each seed from `yaws` (deterministic), reproject every view into its neighbour, average the errors."""
    from ..cameras import FFHQ_FOV_DEG
    from ..eg3d.sampling import raw_views

    rk = G.rendering_kwargs
    pivot, radius = rk.get("avg_camera_pivot", [0, 0, 0.2]), rk.get("avg_camera_radius", 2.7)
    cams = Cameras.orbit(
        torch.tensor(list(yaws)), torch.full((len(yaws),), pitch), radius=radius, fov_deg=FFHQ_FOV_DEG, pivot=pivot
    )
    dev = next(G.parameters()).device
    front = Cameras.orbit(0.0, 0.0, radius=radius, fov_deg=FFHQ_FOV_DEG, pivot=pivot).label().to(dev)
    errs: dict[str, list[float]] = {"depth_error": [], "normal_error_deg": [], "valid_fraction": []}
    for s in seeds:
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(s)).to(dev)
        ws = G.mapping(z, front)
        planes = G.synthesis_planes(ws)
        r = raw_views(G, planes, cams.to(dev), resolution)
        depth, mask = r["image_depth"].cpu(), (r["image_opacity"] > opacity_threshold).cpu()
        for i in range(len(yaws) - 1):
            e = reprojection_error(
                depth[i : i + 1], cams[i], mask[i : i + 1], depth[i + 1 : i + 2], cams[i + 1], mask[i + 1 : i + 2]
            )
            for k, v in e.items():
                if not math.isnan(v):
                    errs[k].append(v)
    return {k: (sum(v) / len(v) if v else math.nan) for k, v in errs.items()}
