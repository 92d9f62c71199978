"""Posed training / held-out views of one procedural scene, rendered by the worlds' reference renderer.

A scene is named by a short spec:

    object:SEED                   the objects-world item of that seed (shape, colour, material drawn from the seed)
    object:SHAPE/COLOR/MATERIAL   a chosen object, e.g. object:torus/red/matte ("rounded cube" may be written
                                  rounded_cube)
    head:SEED                     the parametric head of that seed

Cameras come from the world's own distribution (uniform orbits for objects, EG3D's FFHQ poses for heads), one camera
per camera seed: training views use camera seeds 0 .. N-1, held-out views seeds 100000 .. 100000 + M - 1, so the two
sets never share a pose. Images are rendered at pixel centres (no supersampling), exactly the rays `Cameras.rays()`
gives the fitted field, on the world's white background.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Bool, Float
from torch import Tensor

from ..cameras import Cameras

__all__ = ["Views", "SceneSpec", "parse_scene", "render_views", "HELD_OUT_SEED"]

HELD_OUT_SEED = 100_000


@dataclass
class Views:
    """N posed images of one scene. Depth is the ray distance t of the pixel-centre ray (inf where it misses)."""

    cameras: Cameras  # N cameras (OpenCV cam2world, normalised intrinsics)
    rgb: Float[Tensor, "n h w 3"]  # in [0, 1], composited over `background`
    depth: Float[Tensor, "n h w"]  # exact ray distance of the surface, +inf off the object
    mask: Bool[Tensor, "n h w"]  # pixel-centre ray hits the surface
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    box_warp: float = 1.0  # the scene lies in [-box_warp/2, box_warp/2]^3

    def __post_init__(self):
        n, h, w, c = self.rgb.shape
        if c != 3 or self.depth.shape != (n, h, w) or self.mask.shape != (n, h, w) or len(self.cameras) != n:
            raise ValueError(
                f"Views: inconsistent shapes rgb {tuple(self.rgb.shape)}, depth {tuple(self.depth.shape)}, "
                f"mask {tuple(self.mask.shape)}, {len(self.cameras)} cameras"
            )

    def __len__(self) -> int:
        return self.rgb.shape[0]

    @property
    def resolution(self) -> int:
        return self.rgb.shape[1]


@dataclass
class SceneSpec:
    world: str  # "object" | "head"
    seed: int | None = None
    words: tuple[str, str, str] | None = None  # (shape, colour, material) for a chosen object

    def __str__(self) -> str:
        return f"{self.world}:{self.seed if self.words is None else '/'.join(self.words)}"


def parse_scene(spec: str) -> SceneSpec:
    """'object:3', 'object:torus/red/matte' or 'head:7' -> SceneSpec (clear error otherwise)."""
    world, sep, rest = spec.partition(":")
    usage = "expected object:SEED, object:SHAPE/COLOR/MATERIAL or head:SEED"
    if not sep or world not in ("object", "head") or not rest:
        raise ValueError(f"bad scene {spec!r}: {usage}")
    if rest.lstrip("-").isdigit():
        return SceneSpec(world, seed=int(rest))
    parts = tuple(p.replace("_", " ") for p in rest.split("/"))
    if world != "object" or len(parts) != 3:
        raise ValueError(f"bad scene {spec!r}: {usage}")
    from ..worlds.objects import check_object_words

    try:
        check_object_words(*parts)
    except ValueError as exc:
        raise ValueError(f"bad scene {spec!r}: {exc}") from None
    return SceneSpec(world, words=parts)  # type: ignore[arg-type]


def _scene_and_cameras(spec: SceneSpec, camera_seeds: list[int]):
    from ..worlds import camera_sampling as sampling

    if spec.world == "head":
        from ..worlds.heads import head_scene

        return head_scene(spec.seed)[0], sampling.head_cameras(camera_seeds)
    from ..worlds.objects import object_scene, sample_objects

    scene = sample_objects([spec.seed]).scene if spec.words is None else object_scene(*spec.words)
    return scene, sampling.object_cameras(camera_seeds)


def render_views(spec: SceneSpec | str, n_views: int, resolution: int, held_out: bool = False) -> Views:
    """Render `n_views` reference views of the scene at resolution x resolution (see the module docstring)."""
    from ..worlds.render import Shading, render

    spec = parse_scene(spec) if isinstance(spec, str) else spec
    if n_views < 1 or resolution < 2:
        raise ValueError(f"render_views: need n_views >= 1 and resolution >= 2, got {n_views}, {resolution}")
    first = HELD_OUT_SEED if held_out else 0
    scene, cameras = _scene_and_cameras(spec, list(range(first, first + n_views)))
    shading = Shading()
    out = render(scene, cameras, resolution, shading=shading)
    return Views(
        cameras=cameras,
        rgb=out.rgb.float(),
        depth=out.depth.float(),
        mask=out.mask,
        background=tuple(shading.background),
        box_warp=1.0,
    )
