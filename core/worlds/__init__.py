"""Procedural worlds with known geometry: SDF primitives, composed scenes, the objects and heads worlds, a reference
sphere-tracing renderer (RGB, depth, normals, mask), captions and camera distributions.

    from tristudio.core.worlds import sample_heads, head_cameras, render
    heads = sample_heads(range(8))                 # v1 (the shipped model's world); sample_heads2: v2, centred
    out = render(heads.scene, head_cameras(range(8)), 64, supersample=2)   # out.rgb (8, 64, 64, 3)
"""

from .camera_sampling import camera_yaw_pitch, head_cameras, object_cameras
from .captions import (
    COLORS,
    HAIR_COLORS,
    MATERIALS,
    SHAPES,
    SKIN_TONES,
    VIEW_WORDS,
    head_caption,
    object_caption,
    view_word,
)
from .heads import HeadBatch, head_scene, sample_heads
from .heads2 import HAIR_STYLES, IDENTITY_PARAMS, Head2Batch, Identity, head2_scene, identity_vector, sample_heads2
from .objects import ObjectBatch, object_scene, sample_objects
from .render import Shading, WorldRender, render, sphere_trace
from .scenes import PRIMITIVES, Part, Scene, shape, stack, union

__all__ = [
    "COLORS",
    "HAIR_COLORS",
    "MATERIALS",
    "SHAPES",
    "SKIN_TONES",
    "VIEW_WORDS",
    "head_caption",
    "object_caption",
    "view_word",
    "HeadBatch",
    "HAIR_STYLES",
    "IDENTITY_PARAMS",
    "Head2Batch",
    "Identity",
    "head2_scene",
    "identity_vector",
    "sample_heads2",
    "head_scene",
    "sample_heads",
    "ObjectBatch",
    "object_scene",
    "sample_objects",
    "WorldRender",
    "Shading",
    "render",
    "sphere_trace",
    "camera_yaw_pitch",
    "head_cameras",
    "object_cameras",
    "PRIMITIVES",
    "Part",
    "Scene",
    "shape",
    "stack",
    "union",
]
