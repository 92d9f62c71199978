"""TriPlaneGenerator configurations: `TriPlaneGenerator(**preset(name))`.

| preset  | output | neural res | planes         | samples | backbone channels    | SR                        | params |
|---------|--------|------------|----------------|---------|----------------------|---------------------------|--------|
| ffhq512 | 512    | 128        | 3 x 32 x 256^2 | 48 + 48 | 512 (<=64), 256, 128 | Hybrid8XDC (256, 128)     | 30.7 M |
| small   | 64     | 32         | 3 x 32 x 64^2  | 16 + 16 | 64                   | Hybrid2X (64, 32) 32->64  | 0.96 M |
| tiny    | 32     | 16         | 3 x 8 x 32^2   | 8 + 8   | 32 (<=16), 16        | Hybrid2X (16, 16) 16->32  | 0.09 M |
| medium  | 128    | 64         | 3 x 32 x 128^2 | 24 + 24 | 128 (<=32), 64, 32   | Hybrid2X (64, 32) 64->128 | 2.06 M |

`medium` is the sharper heads model of issue 18 (128 px from 64 px neural rendering), meant for a GPU session and
trained with EG3D's two-stage schedule, `TRAIN_SCHEDULES["medium-two-stage"]` (`tristudio train eg3d --preset medium
--schedule medium-two-stage`): stage 1 renders at 32 px neural resolution, stage 2 (from `fade_start` kimg) fades it
linearly to 64 px over `fade` kimg. The resolution is a function of the images shown (cur_nimg), which checkpoints
store, so a run resumed in another session continues on the same schedule.

ffhq512 is EG3D's `train.py --cfg=ffhq --gen_pose_cond=True` generator at 512 px, fine-tuned to neural rendering
resolution 128 (the released ffhq512-128 model); its kwargs are exactly the official `_init_kwargs`.
`small` is the shipped procedural-heads model (core/assets/eg3d_heads), sized to train on two CPU cores: w_dim 256, a
2-layer mapping, 64^2 planes from a 64-channel backbone, 32^2 rays with 16 + 16 samples, a 2x super-resolution head,
and a white background (`white_back`: the heads world is rendered over white, so no background wall is needed).
`tiny` is for tests (< 1 s per forward). All reuse EG3D's FFHQ camera range (2.25 .. 3.3, box 1, radius 2.7).
The viewer renders any of them with more samples per ray than they were trained with (Render panel).
"""

from __future__ import annotations

import copy

__all__ = [
    "PRESETS",
    "TRAIN_SCHEDULES",
    "preset",
    "schedule",
    "ffhq512",
    "small",
    "tiny",
    "medium",
    "FFHQ_RENDERING_KWARGS",
]

FFHQ_RENDERING_KWARGS = {
    "image_resolution": 512,
    "disparity_space_sampling": False,
    "clamp_mode": "softplus",
    "superresolution_module": "training.superresolution.SuperresolutionHybrid8XDC",
    "c_gen_conditioning_zero": False,
    "gpc_reg_prob": 0.5,
    "c_scale": 1.0,
    "superresolution_noise_mode": "none",
    "density_reg": 0.25,
    "density_reg_p_dist": 0.004,
    "reg_type": "l1",
    "decoder_lr_mul": 1.0,
    "sr_antialias": True,
    "depth_resolution": 48,
    "depth_resolution_importance": 48,
    "ray_start": 2.25,
    "ray_end": 3.3,
    "box_warp": 1,
    "avg_camera_radius": 2.7,
    "avg_camera_pivot": [0, 0, 0.2],
}


def ffhq512() -> dict:
    """EG3D FFHQ 512 (ffhq512-128.pkl's G_ema): 30,662,136 parameters, 176 state-dict entries."""
    return {
        "z_dim": 512,
        "c_dim": 25,
        "w_dim": 512,
        "img_resolution": 512,
        "img_channels": 3,
        "sr_num_fp16_res": 4,
        "mapping_kwargs": {"num_layers": 2},
        "rendering_kwargs": copy.deepcopy(FFHQ_RENDERING_KWARGS),
        "sr_kwargs": {"channel_base": 32768, "channel_max": 512, "fused_modconv_default": "inference_only"},
        "channel_base": 32768,
        "channel_max": 512,
        "fused_modconv_default": "inference_only",
        "num_fp16_res": 0,
        "conv_clamp": None,
        "neural_rendering_resolution": 128,
    }


def _compact(
    img_resolution: int,
    neural_resolution: int,
    samples: int,
    z_dim: int,
    channel_base: int,
    channel_max: int,
    planes: tuple[int, int],
    sr_channels: tuple[int, int],
    white_back: bool,
) -> dict:
    """The compact presets (small, tiny, medium): EG3D's kwargs with a 2-layer mapping, a 2x super-resolution head
    and no fp16; planes = (plane channels, plane resolution)."""
    rk = copy.deepcopy(FFHQ_RENDERING_KWARGS)
    rk.update(
        image_resolution=img_resolution,
        superresolution_module="SuperresolutionHybrid2X",
        depth_resolution=samples,
        depth_resolution_importance=samples,
    )
    if white_back:
        rk["white_back"] = True
    return {
        "z_dim": z_dim,
        "c_dim": 25,
        "w_dim": z_dim,
        "img_resolution": img_resolution,
        "img_channels": 3,
        "sr_num_fp16_res": 0,
        "mapping_kwargs": {"num_layers": 2},
        "rendering_kwargs": rk,
        "sr_kwargs": {"block_channels": list(sr_channels), "fused_modconv_default": "inference_only"},
        "channel_base": channel_base,
        "channel_max": channel_max,
        "fused_modconv_default": "inference_only",
        "num_fp16_res": 0,
        "conv_clamp": None,
        "plane_resolution": planes[1],
        "plane_channels": planes[0],
        "neural_rendering_resolution": neural_resolution,
    }


def small() -> dict:
    """64 px output for CPU training (the shipped heads model)."""
    return _compact(64, 32, 16, 256, 4096, 64, planes=(32, 64), sr_channels=(64, 32), white_back=True)


def tiny() -> dict:
    """32 px output, for tests."""
    return _compact(32, 16, 8, 32, 512, 32, planes=(8, 32), sr_channels=(16, 16), white_back=False)


def medium() -> dict:
    """128 px output from 64 px neural rendering (the next shipped heads model; GPU training)."""
    return _compact(128, 64, 24, 256, 4096, 128, planes=(32, 128), sr_channels=(64, 32), white_back=True)


PRESETS = {"ffhq512": ffhq512, "small": small, "tiny": tiny, "medium": medium}

# LossConfig overrides of named training schedules (`tristudio train eg3d --schedule NAME`; explicit flags win).
TRAIN_SCHEDULES: dict[str, dict] = {
    "medium-two-stage": {
        "neural_rendering_resolution_initial": 32,
        "neural_rendering_resolution_final": 64,
        "neural_rendering_resolution_fade_start_kimg": 2000.0,
        "neural_rendering_resolution_fade_kimg": 500.0,
        "density_reg": 0.5,  # twice EG3D's FFHQ weight: the shipped 64 px model's floaters
        "density_reg_interval": 4,
        "blur_init_sigma": 10.0,
        "blur_fade_kimg": 200.0,
    },
}


def schedule(name: str) -> dict:
    if name not in TRAIN_SCHEDULES:
        raise ValueError(f"unknown training schedule {name!r}; choose one of {sorted(TRAIN_SCHEDULES)}")
    return copy.deepcopy(TRAIN_SCHEDULES[name])


def preset(name: str) -> dict:
    """Init kwargs of a named preset (a fresh copy)."""
    if name not in PRESETS:
        raise ValueError(f"unknown generator preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
