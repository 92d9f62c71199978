"""Mutation check of tristudio's core math and safety code: do the tests bite?

Each mutant is one single-fault change (a file, an exact snippet of it, its replacement) and the tests meant to catch
it. For each mutant in turn the script writes the change into the working tree, runs those tests with pytest, and
restores the file byte for byte (try/finally; a SIGTERM / Ctrl-C restores too, and a run killed harder leaves a note
that the next run uses to restore the file first). A mutant is

    killed     the targeted tests fail (pytest exit status 1)
    survived   they pass: a missing test
    stale      its snippet is not in the file exactly once (the code moved: update the mutant, never skip it)
    error      pytest could not run the tests (collection error, no such test: exit status 2-5)
    timeout    the tests ran past --timeout (counted as not killed)

Usage (from the repository root):
    python3 scripts/mutants.py                  # baseline (targeted tests pass unmutated), then every mutant
    python3 scripts/mutants.py --only r1-interval,fid-ddof
    python3 scripts/mutants.py --list           # the mutants and their tests, nothing run
    python3 scripts/mutants.py --check          # only verify every snippet is present exactly once (fast)
Writes a table to stdout and JSON (default build/mutants.json). Exit status 0 only when every mutant was killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # relative to the repository root
    original: str  # exact snippet, must occur once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest node ids (files, file::test)
    what: str  # the fault, in words


def M(id, file, original, replacement, tests, what):  # noqa: N802 (a compact table below)
    return Mutant(id, file, original, replacement, tuple([tests] if isinstance(tests, str) else tests), what)


COMP, SAMP = "core/render/compositing.py", "core/render/samplers.py"
VOL, TRI, SG2, DISC = (
    "core/render/volume.py",
    "core/render/triplane.py",
    "core/eg3d/stylegan2.py",
    ("core/eg3d/discriminator.py"),
)
LOSS, TRAIN, AUG, CAM = "core/eg3d/loss.py", "core/eg3d/train.py", "core/eg3d/augment.py", "core/cameras.py"
GUIDE, PRIOR = "core/dreamfusion/guidance.py", "core/priors/prior.py"
FID, KID, ATOMIC, PICKLE, GUARD = (
    "core/metrics/fid.py",
    "core/metrics/kid.py",
    "core/io/atomic.py",
    "core/io/eg3d_pickle.py",
    "tests/conftest.py",
)
T_VOL, T_TRI, T_SG2, T_DISC = (
    "tests/test_volume.py",
    "tests/test_triplane.py",
    "tests/test_stylegan2.py",
    ("tests/test_discriminator.py"),
)
T_LOSS, T_REG, T_AUG = (
    "tests/test_train_losses.py",
    "tests/test_train_regularisers.py",
    "tests/test_augment_sampling.py",
)
T_GUIDE, T_MET, T_ATOM, T_NET = (
    "tests/test_dreamfusion_guidance.py",
    "tests/test_metrics.py",
    "tests/test_atomic_io.py",
    "tests/test_network_guard.py",
)

MUTANTS: list[Mutant] = [
    # ---- volume rendering
    M(
        "vol-alpha-no-delta",
        COMP,
        "alpha = 1 - torch.exp(-densities_mid * deltas)",
        "alpha = 1 - torch.exp(-densities_mid)",
        T_VOL,
        "opacity ignores the sample spacing",
    ),
    M(
        "vol-transmittance-inclusive",
        COMP,
        "return alpha * torch.cumprod(shifted, dim=-2)[:, :, :-1]",
        "return alpha * torch.cumprod(shifted, dim=-2)[:, :, 1:]",
        T_VOL,
        "T_i includes the sample's own opacity",
    ),
    M(
        "vol-density-not-midpoint",
        COMP,
        "densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2",
        "densities_mid = densities[:, :, :-1]",
        [
            f"{T_VOL}::test_opaque_sphere_depth_stratified_within_one_spacing",
            f"{T_VOL}::test_constant_density_transmittance_is_exp_minus_s_L",
            T_TRI,
        ],
        "left-point instead of midpoint",
    ),
    M(
        "vol-depth-left-edge",
        COMP,
        "depth = torch.nan_to_num((weights * depths_mid).sum(dim=-2) / total",
        "depth = torch.nan_to_num((weights * depths[:, :, :-1]).sum(dim=-2) / total",
        T_VOL,
        "expected depth at interval starts",
    ),
    M("vol-white-back", COMP, "rgb = rgb + 1 - total", "rgb = rgb + 1", T_VOL, "white background ignores opacity"),
    M(
        "vol-fine-colours-dropped",
        VOL,
        "rgb = weighted_sum(v[:, :, :s], coarse_colors) + weighted_sum(v[:, :, s:], colors)",
        "rgb = weighted_sum(v[:, :, :s], coarse_colors)",
        T_VOL,
        "the renderer composites the coarse samples only, dropping the importance samples' colours",
    ),
    M(
        "occ-no-skipping",
        "core/render/occupancy.py",
        "active = (w.sum(dim=(2, 3)) > self.min_opacity) & hit[..., 0]",
        "active = hit[..., 0]",
        (
            "tests/test_dreamfusion_field.py::test_grid_sampler_matches_the_dense_renderer_on_a_blob",
            "tests/test_render_samplers.py",
        ),
        "the occupancy grid never skips an empty ray",
    ),
    M(
        "occ-empty-depth-not-far",
        VOL,
        "depth = torch.minimum(depth, far)",
        "pass",
        "tests/test_render_samplers.py",
        "an active ray with no weight reports an infinite depth instead of its far bound",
    ),
    M(
        "vol-no-jitter",
        SAMP,
        "    return depths + jitter * delta\n",
        "    return depths + 0.5 * delta\n",
        T_AUG,
        "stratified sampling never jitters",
    ),
    M(
        "vol-disparity-step",
        SAMP,
        "return 1.0 / (disp + jitter * delta * (far_disp - near_disp)[..., None])",
        "return 1.0 / (disp + jitter * delta)",
        T_AUG,
        "disparity jitter not scaled to the disparity range",
    ),
    M(
        "vol-disparity-ignored",
        SAMP,
        "    if disparity:\n        near_disp",
        "    if False:\n        near_disp",
        T_AUG,
        "disparity_space_sampling has no effect",
    ),
    M(
        "vol-pdf-quantiles",
        SAMP,
        "u = (torch.arange(n_samples, device=bins.device, dtype=bins.dtype) + 0.5) / n_samples",
        "u = torch.arange(n_samples, device=bins.device, dtype=bins.dtype) / n_samples",
        T_VOL,
        "deterministic importance quantiles off by half a step",
    ),
    # ---- tri-plane
    M(
        "tri-sum-not-mean",
        TRI,
        "x = sampled.mean(dim=1)",
        "x = sampled.sum(dim=1)",
        T_TRI,
        "plane features summed instead of averaged",
    ),
    M(
        "tri-third-plane-axes",
        TRI,
        "_PLANE_INDEX = ((0, 1), (0, 2), (2, 0))",
        "_PLANE_INDEX = ((0, 1), (0, 2), (2, 1))",
        T_TRI,
        "EG3D's (z, x) third plane 'fixed' to (z, y)",
    ),
    M(
        "tri-box-warp",
        TRI,
        "coords * (2.0 / box_warp)",
        "coords * (1.0 / box_warp)",
        T_TRI,
        "box scaled to [-1/2, 1/2] instead of [-1, 1]",
    ),
    M(
        "tri-rgb-range",
        TRI,
        "rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001",
        "rgb = torch.sigmoid(x[..., 1:])",
        T_TRI,
        "decoder colour range without EG3D's 0.001 margin",
    ),
    # ---- StyleGAN2 modulation / demodulation, FIR filters
    M(
        "sg2-no-demod",
        SG2,
        "dcoefs = (w_mod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()",
        "dcoefs = torch.ones_like(w_mod[:, :, 0, 0, 0])",
        T_SG2,
        "demodulation removed",
    ),
    M(
        "sg2-demod-sqrt",
        SG2,
        "dcoefs = (w_mod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()",
        "dcoefs = (w_mod.square().sum(dim=[2, 3, 4]) + 1e-8).reciprocal()",
        T_SG2,
        "demodulation by the squared norm",
    ),
    M(
        "sg2-style-gain",
        SG2,
        "styles = self.affine(w) * self.weight_gain",
        "styles = self.affine(w)",
        ["tests/test_generator.py", T_SG2],
        "equalised-LR gain dropped from the to-RGB style",
    ),
    M(
        "fir-unnormalised",
        SG2,
        "    return f / f.sum()\n",
        "    return f / f.abs().max()\n",
        [T_SG2, T_DISC],
        "FIR filter not normalised to unit DC gain",
    ),
    M(
        "fir-no-flip",
        SG2,
        "    if not flip_filter:\n        f = f.flip(list(range(f.ndim)))",
        "    if False:\n        f = f",
        T_SG2,
        "upfirdn2d correlates instead of convolving",
    ),
    # ---- discriminator
    M(
        "disc-down-no-blur",
        DISC,
        "x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))\n                x = F.conv2d(x, w, stride=self.down)",
        "x = F.conv2d(x, w, stride=self.down, padding=self.padding)",
        T_DISC,
        "3x3 down-conv without its low-pass",
    ),
    M(
        "disc-skip-no-blur",
        DISC,
        "x = upfirdn2d(x, f, down=self.down, padding=(p0, p1, p0, p1))\n                x = F.conv2d(x, w)",
        "x = F.conv2d(x[..., :: self.down, :: self.down], w)",
        T_DISC,
        "1x1 skip decimates without low-pass",
    ),
    M("disc-cmap-scale", DISC, "* (1 / np.sqrt(self.cmap_dim))", "* 1.0", T_DISC, "projection not / sqrt(cmap_dim)"),
    M(
        "disc-mbstd-contiguous",
        DISC,
        "y = x.reshape(g, n // g, f, c // f, h, w)",
        "y = x.reshape(n // g, g, f, c // f, h, w).transpose(0, 1)",
        T_DISC,
        "minibatch-stddev groups contiguous instead of strided",
    ),
    M(
        "disc-resize-aliased",
        DISC,
        'return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)',
        'return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=False)',
        [T_LOSS, T_REG],
        "raw-image resize without antialiasing",
    ),
    # ---- losses and the trainer's regularisation phases
    M(
        "r1-interval",
        TRAIN,
        "lambda: L.r1_loss(D, ctx), k)",
        "lambda: L.r1_loss(D, ctx))",
        T_REG,
        "lazy R1 without the r1_interval multiplier",
    ),
    M(
        "density-interval",
        TRAIN,
        "lambda: L.density_reg_loss(G, ctx), k)",
        "lambda: L.density_reg_loss(G, ctx))",
        T_REG,
        "lazy density reg without its interval multiplier",
    ),
    M(
        "r1-gamma-half",
        LOSS,
        "* (step.cfg.r1_gamma / 2)",
        "* step.cfg.r1_gamma",
        [T_LOSS, T_REG],
        "R1 weight gamma, not gamma/2",
    ),
    M(
        "g-loss-sign",
        LOSS,
        "return F.softplus(-logits).mean()",
        "return F.softplus(logits).mean()",
        T_LOSS,
        "generator loss saturating sign",
    ),
    M(
        "density-p-dist",
        LOSS,
        "q = p + inp.density_offsets * cfg.density_reg_p_dist",
        "q = p + inp.density_offsets",
        [T_LOSS, T_REG],
        "density-reg offsets not scaled",
    ),
    M(
        "ema-direction",
        LOSS,
        "p_ema.copy_(p.lerp(p_ema, beta))",
        "p_ema.copy_(p_ema.lerp(p, beta))",
        T_LOSS,
        "EMA weights beta on the new parameters",
    ),
    M(
        "adam-lazy-ratio",
        LOSS,
        "return interval / (interval + 1) if",
        "return (interval + 1) / interval if",
        T_LOSS,
        "lazy-regularisation Adam ratio inverted",
    ),
    M(
        "ddp-sum-not-mean",
        "core/eg3d/ddp.py",
        "    flat /= world_size\n",
        "    flat /= 1\n",
        "tests/test_train_ddp.py",
        "all-reduced gradients summed, not averaged",
    ),
    # ---- ADA augmentation
    M(
        "ada-p-inverted",
        AUG,
        "return (rand(n) < self.p).float()",
        "return (rand(n) > self.p).float()",
        T_AUG,
        "augmentations fire with probability 1 - p",
    ),
    M("ada-contrast-about-zero", AUG, "x = mean + (x - mean) * f", "x = x * f", T_AUG, "contrast scales about 0"),
    M(
        "ada-saturation-lum",
        AUG,
        "lum = x.mean(dim=2, keepdim=True)",
        "lum = x.mean(dim=(2, 3, 4), keepdim=True)",
        T_AUG,
        "saturation about the image mean, not each pixel's luminance",
    ),
    M(
        "ada-tuner-sign",
        AUG,
        "math.copysign(1.0, rt - self.target)",
        "math.copysign(1.0, self.target - rt)",
        T_AUG,
        "ADA tuner moves p the wrong way",
    ),
    # ---- EG3D camera conventions
    M(
        "cam-fov-not-diagonal",
        CAM,
        "    return 1.0 / (math.sqrt(2.0) * math.tan(math.radians(fov_deg) / 2))",
        "    return 1.0 / (2.0 * math.tan(math.radians(fov_deg) / 2))",
        "tests/test_cameras.py",
        "field of view across the width, not the diagonal",
    ),
    M(
        "cam-pixel-centre",
        CAM,
        "rows = (torch.arange(height, device=dev, dtype=dt) + 0.5) / height",
        "rows = torch.arange(height, device=dev, dtype=dt) / height",
        "tests/test_cameras.py",
        "ray rows through pixel corners",
    ),
    M(
        "cam-right-handed",
        CAM,
        "right = -torch.nn.functional.normalize(torch.linalg.cross(up, forward, dim=-1), dim=-1)",
        "right = torch.nn.functional.normalize(torch.linalg.cross(up, forward, dim=-1), dim=-1)",
        "tests/test_cameras.py",
        "camera x axis mirrored",
    ),
    # ---- pickle safety
    M(
        "pickle-outer-allow-all",
        PICKLE,
        'raise _Reject(f"global {_printable(qualified)} is not on the allow-list")',
        "return dict  # any unknown global becomes a harmless stand-in",
        "tests/test_pickle_safety.py",
        "any global resolves in a network pickle",
    ),
    M(
        "pickle-storage-allow-all",
        PICKLE,
        '        if f"{module}.{name}" in ALLOWED_STORAGE_GLOBALS:\n            return _StorageType(',
        "        if True:\n            return _StorageType(",
        "tests/test_pickle_safety.py",
        "any global resolves inside a tensor blob",
    ),
    M(
        "pickle-prescan-off",
        PICKLE,
        "            if op.name not in allowed:\n",
        "            if False:\n",
        "tests/test_pickle_safety.py",
        "opcode prescan disabled",
    ),
    # ---- atomic I/O
    M(
        "atomic-direct-write",
        ATOMIC,
        "    with atomic_path(target) as tmp:\n        Path(tmp).write_bytes(data)",
        "    Path(target).parent.mkdir(parents=True, exist_ok=True)\n    Path(target).write_bytes(data)",
        T_ATOM,
        "writes straight to the target",
    ),
    M(
        "atomic-no-cleanup",
        ATOMIC,
        "        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)\n"
        "        raise",
        "        raise",
        T_ATOM,
        "a failed write leaves its temporary file",
    ),
    M(
        "atomic-folder-delete-first",
        ATOMIC,
        "        os.replace(target, old)\n        try:",
        "        shutil.rmtree(target)\n        try:",
        T_ATOM,
        "folder target removed before the new one is in place",
    ),
    # ---- score distillation
    M(
        "csd-negative-sign",
        GUIDE,
        "g = g - self.negative_scale * (eps_neg - parts.eps_uncond)",
        "g = g + self.negative_scale * (eps_neg - parts.eps_uncond)",
        f"{T_GUIDE}::test_csd_negative_prompt_term_matches_formula",
        "CSD adds the negative score",
    ),
    M(
        "csd-negative-no-baseline",
        GUIDE,
        "g = g - self.negative_scale * (eps_neg - parts.eps_uncond)",
        "g = g - self.negative_scale * eps_neg",
        f"{T_GUIDE}::test_csd_negative_prompt_term_matches_formula",
        "CSD negative term without the unconditional baseline",
    ),
    M(
        "vsd-sample-conversion",
        GUIDE,
        "        return (z_t - a.sqrt() * out) / (1 - a).sqrt()\n",
        "        return out\n",
        f"{T_GUIDE}::test_vsd_converts_a_sample_prediction_to_eps",
        "VSD's LoRA x0 prediction used as eps",
    ),
    M(
        "prior-sample-conversion",
        PRIOR,
        "return (x_t - a.sqrt() * out) / (1 - a).sqrt()",
        "return out",
        f"{T_GUIDE}::test_vsd_converts_a_sample_prediction_to_eps",
        "prior's x0 prediction used as eps",
    ),
    M(
        "sds-weight",
        GUIDE,
        "return (1 - self.prior.alphas_cumprod[t]).view(-1, 1, 1, 1)",
        "return torch.ones_like(self.prior.alphas_cumprod[t]).view(-1, 1, 1, 1)",
        f"{T_GUIDE}::test_pixel_prior_gradient_matches_formula",
        "w(t) = 1 instead of 1 - abar_t",
    ),
    M(
        "sds-no-noise-baseline",
        GUIDE,
        "return eps_hat - noise, {}",
        "return eps_hat, {}",
        f"{T_GUIDE}::test_pixel_prior_gradient_matches_formula",
        "SDS without the - eps baseline",
    ),
    M(
        "cfg-formula",
        PRIOR,
        "        eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)\n        return",
        "        eps = eps_cond + guidance_scale * (eps_cond - eps_uncond)\n        return",
        f"{T_GUIDE}::test_pixel_prior_gradient_matches_formula",
        "classifier-free guidance from the conditional branch",
    ),
    # ---- metrics
    M(
        "fid-ddof",
        FID,
        "return mu, x.T @ x / (f.shape[0] - 1)",
        "return mu, x.T @ x / f.shape[0]",
        T_MET,
        "FID covariance with N instead of N - 1",
    ),
    M(
        "fid-trace-sqrt",
        FID,
        "return float(torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum())",
        "return float(torch.linalg.eigvalsh(m).clamp(min=0).sum())",
        T_MET,
        "tr(S1 S2) instead of tr sqrt(S1 S2)",
    ),
    M(
        "kid-biased",
        KID,
        "same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))",
        "same = (kxx.sum() + kyy.sum()) / (m * m)",
        T_MET,
        "biased MMD (diagonal kept)",
    ),
    M("kid-kernel-degree", KID, "degree: int = 3", "degree: int = 2", T_MET, "quadratic instead of cubic kernel"),
    M(
        "rprecision-ties",
        "core/priors/rprecision.py",
        "others_at_least = (similarity >= right).sum(dim=1) - 1",
        "others_at_least = (similarity > right).sum(dim=1)",
        "tests/test_priors.py",
        "ties count as retrievals",
    ),
    M(
        "bpe-header-kept",
        "core/priors/tokenizer.py",
        "lines[1 : N_MERGES + 1]",
        "lines[0:N_MERGES]",
        "tests/test_train_priors.py::test_clip_bpe_tokenizer_ids_match_openai_clip",
        "version header read as a merge",
    ),
    # ---- the network guard (tests/conftest.py)
    M(
        "guard-connect-ex",
        GUARD,
        'def _guarded_connect_ex(self, address):\n    _check(self, address, "open a network connection to")\n',
        "def _guarded_connect_ex(self, address):\n",
        T_NET,
        "connect_ex unguarded",
    ),
    M(
        "guard-udp-sendto",
        GUARD,
        '    _check(self, address, "send a datagram to")\n',
        "",
        T_NET,
        "UDP sendto unguarded",
    ),
    M(
        "guard-getaddrinfo",
        GUARD,
        "def _guarded_getaddrinfo(host, *args, **kwargs):\n    if not _is_loopback_host(host):",
        "def _guarded_getaddrinfo(host, *args, **kwargs):\n    if False:",
        T_NET,
        "DNS resolution unguarded",
    ),
    M(
        "guard-host-names",
        GUARD,
        "    except ValueError:\n        return False\n",
        "    except ValueError:\n        return True\n",
        T_NET,
        "any host name counts as loopback",
    ),
    M(
        "guard-ipv4-mapped",
        GUARD,
        "return ip.is_loopback or (mapped is not None and mapped.is_loopback)",
        "return ip.is_loopback or mapped is not None",
        T_NET,
        "IPv4-mapped IPv6 addresses pass",
    ),
    M(
        "guard-ipv6",
        GUARD,
        "if sock.family in (socket.AF_INET, socket.AF_INET6) and",
        "if sock.family == socket.AF_INET and",
        T_NET,
        "IPv6 sockets unguarded",
    ),
]


# ----------------------------------------------------------------------------------------------- machinery


def _git_dir() -> Path:
    out = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True, text=True)
    return (ROOT / out.stdout.strip()).resolve() if out.returncode == 0 else ROOT / "build"


NOTE = _git_dir() / "tristudio-mutant-active.json"  # written while a file is mutated: {"file", "original"}


def _restore_leftover() -> None:
    """A previous run killed hard (SIGKILL) may have left a file mutated: put its original bytes back."""
    if NOTE.is_file():
        note = json.loads(NOTE.read_text())
        (ROOT / note["file"]).write_text(note["original"], encoding="utf-8")
        NOTE.unlink()
        print(f"restored {note['file']} left mutated by an interrupted run")


def _occurrences(m: Mutant) -> int:
    path = ROOT / m.file
    return path.read_text(encoding="utf-8").count(m.original) if path.is_file() else 0


def _pytest(tests, timeout: float) -> tuple[int | None, float, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, ""
    tail = (p.stdout + p.stderr).strip().splitlines()
    return p.returncode, time.perf_counter() - t0, tail[-1] if tail else ""


def run_mutant(m: Mutant, timeout: float) -> dict:
    path = ROOT / m.file
    n = _occurrences(m)
    if n != 1:
        return {"status": "stale", "seconds": 0.0, "detail": f"snippet found {n} times in {m.file}"}
    original = path.read_text(encoding="utf-8")
    NOTE.write_text(json.dumps({"file": m.file, "original": original}))
    try:
        path.write_text(original.replace(m.original, m.replacement, 1), encoding="utf-8")
        rc, seconds, last = _pytest(m.tests, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
        NOTE.unlink(missing_ok=True)
    assert path.read_text(encoding="utf-8") == original, f"{m.file} was not restored"
    if rc is None:
        status = "timeout"
    else:
        status = {0: "survived", 1: "killed"}.get(rc, "error")
    return {"status": status, "seconds": round(seconds, 2), "detail": last, "returncode": rc}


def run(only: str, list_only: bool, check: bool, baseline: bool, timeout: float, json_out: Path) -> int:
    """The exit status: 0 when every chosen mutant is killed (or the listing / check passed)."""
    ids = [m.id for m in MUTANTS]
    assert len(set(ids)) == len(ids), "duplicate mutant ids"
    chosen = MUTANTS
    if only:
        want = [s.strip() for s in only.split(",") if s.strip()]
        unknown = sorted(set(want) - set(ids))
        if unknown:
            print(f"unknown mutant ids: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTANTS if m.id in want]
    if list_only:
        for m in chosen:
            print(f"{m.id:28s} {m.file:32s} {m.what}\n{'':28s} tests: {' '.join(m.tests)}")
        return 0
    _restore_leftover()
    if check:
        bad = [(m.id, _occurrences(m)) for m in chosen if _occurrences(m) != 1]
        for i, n in bad:
            print(f"stale: {i} (snippet found {n} times)")
        print(f"{len(chosen) - len(bad)}/{len(chosen)} snippets found exactly once")
        return 1 if bad else 0

    def _term(signum, frame):  # turn SIGTERM into an exception so the finally blocks restore the file
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    if baseline:
        tests = sorted({t for m in chosen for t in m.tests})
        print(f"baseline: {len(tests)} targeted test ids on the unmutated code ...", flush=True)
        rc, seconds, last = _pytest(tests, timeout * 4)
        print(f"baseline: {last} ({seconds:.0f} s)", flush=True)
        if rc != 0:
            print("the targeted tests fail without any mutation: fix them first", file=sys.stderr)
            return 2

    results = []
    print(f"{'mutant':30s} {'status':9s} {'seconds':>8s}  file", flush=True)
    for m in chosen:
        r = run_mutant(m, timeout)
        results.append({**asdict(m), **r})
        print(f"{m.id:30s} {r['status']:9s} {r['seconds']:8.1f}  {m.file}", flush=True)
    killed = sum(r["status"] == "killed" for r in results)
    score = killed / len(results) if results else 1.0
    summary = {
        "total": len(results),
        "killed": killed,
        "survived": sum(r["status"] == "survived" for r in results),
        "stale": sum(r["status"] == "stale" for r in results),
        "error": sum(r["status"] == "error" for r in results),
        "timeout": sum(r["status"] == "timeout" for r in results),
        "score": round(score, 4),
        "seconds": round(sum(r["seconds"] for r in results), 1),
    }
    print(
        f"\nmutation score: {killed}/{len(results)} killed ({100 * score:.1f}%); "
        + ", ".join(f"{k} {summary[k]}" for k in ("survived", "stale", "error", "timeout"))
        + f"; {summary['seconds']:.0f} s"
    )
    out = json_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "mutants": results}, indent=1))
    print(f"wrote {out}")
    return 0 if killed == len(results) else 1


def main(
    only: str = typer.Option("", help="comma-separated mutant ids"),
    list_only: bool = typer.Option(False, "--list", help="list the mutants and exit"),
    check: bool = typer.Option(False, "--check", help="only check that every snippet occurs exactly once"),
    baseline: bool = typer.Option(True, help="run the targeted tests unmutated first"),
    timeout: float = typer.Option(600.0, help="seconds per pytest run"),
    json_out: Path = typer.Option(ROOT / "build" / "mutants.json", "--json", help="where to write the results"),
) -> None:
    raise typer.Exit(run(only, list_only, check, baseline, timeout, json_out))


if __name__ == "__main__":
    typer.run(main)
