"""Tri-plane field: EG3D's projection axes, bilinear sampling against analytic ramps, the decoder's ranges."""

import torch

from tristudio.core.render.triplane import (
    PLANE_AXES,
    OSGDecoder,
    project_onto_planes,
    sample_from_planes,
    triplane_field,
)


def test_projection_matches_eg3d_inverse_plane_axes():
    x = torch.randn(2, 50, 3)
    ref = torch.stack([(x @ torch.linalg.inv(PLANE_AXES[i]))[..., :2] for i in range(3)], dim=1)
    got = project_onto_planes(x)
    assert torch.equal(got, ref)
    p = torch.tensor([[[0.1, 0.2, 0.3]]], dtype=torch.float64)
    proj = project_onto_planes(p)[0, :, 0]
    assert proj.tolist() == [[0.1, 0.2], [0.1, 0.3], [0.3, 0.1]]  # (x, y), (x, z), (z, x): EG3D's quirk


def _ramp_planes(h, w, coeffs):
    """Plane i holds a_i * u + b_i * v + c_i, u/v the [-1, 1] coordinates of texel centres (align_corners=False)."""
    u = (torch.arange(w) + 0.5) / w * 2 - 1
    v = (torch.arange(h) + 0.5) / h * 2 - 1
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    planes = torch.stack([a * uu + b * vv + c for a, b, c in coeffs])  # (3, h, w)
    return planes[None, :, None]  # (1, 3, 1, h, w)


def test_linear_ramp_returns_analytic_value():
    coeffs = [(0.7, -0.3, 0.1), (-0.2, 0.5, 0.05), (0.4, 0.9, -0.3)]
    planes = _ramp_planes(64, 48, coeffs)
    box = 1.6
    # keep points where bilinear interpolation is exact for a linear function: inside the outermost texel centres
    pts = (torch.rand(1, 500, 3) * 2 - 1) * (box / 2) * 0.95
    feats = sample_from_planes(planes, pts, box_warp=box)  # (1, 3, m, 1)
    q = pts[0] * (2 / box)
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    expected = [
        coeffs[0][0] * x + coeffs[0][1] * y + coeffs[0][2],  # plane 0 at (x, y)
        coeffs[1][0] * x + coeffs[1][1] * z + coeffs[1][2],  # plane 1 at (x, z)
        coeffs[2][0] * z + coeffs[2][1] * x + coeffs[2][2],  # plane 2 at (z, x)
    ]
    for i in range(3):
        assert torch.allclose(feats[0, i, :, 0], expected[i], atol=1e-5), i


def test_outside_the_box_samples_are_zero():
    planes = torch.ones(1, 3, 4, 16, 16)
    pts = torch.tensor([[[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]])
    f = sample_from_planes(planes, pts, box_warp=1.0)
    assert torch.all(f[0, :, 0] == 0) and torch.allclose(f[0, :, 1], torch.ones(3, 4))


def test_decoder_averages_planes_and_bounds_features():
    dec = OSGDecoder(n_features=8, hidden_dim=16, out_features=5)
    sampled = torch.randn(2, 3, 10, 8)
    out = dec(sampled)
    assert out["sigma"].shape == (2, 10, 1) and out["rgb"].shape == (2, 10, 5)
    assert out["rgb"].min() > -0.001 - 1e-7 and out["rgb"].max() < 1.001 + 1e-7
    # only the mean of the three planes matters
    permuted = sampled[:, [2, 0, 1]]
    assert torch.allclose(dec(permuted)["rgb"], out["rgb"], atol=1e-6)
    mean_only = sampled.mean(1, keepdim=True).expand_as(sampled)
    assert torch.allclose(dec(mean_only)["sigma"], out["sigma"], atol=1e-5)
    # state-dict names as EG3D's decoder
    assert set(dec.state_dict()) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}


def test_decoder_is_its_mlp_on_the_plane_mean_with_one_plane_nonzero():
    """One plane non-zero: the mean is a third of it (a sum, max or first-plane aggregation would differ)."""
    torch.manual_seed(0)
    dec = OSGDecoder(n_features=8, hidden_dim=16, out_features=5)
    sampled = torch.zeros(2, 3, 10, 8)
    sampled[:, 1] = torch.randn(2, 10, 8) * 3
    out = dec(sampled)
    with torch.no_grad():
        x = dec.net(sampled[:, 1] / 3)
    torch.testing.assert_close(out["sigma"], x[..., :1])
    torch.testing.assert_close(out["rgb"], torch.sigmoid(x[..., 1:]) * 1.002 - 0.001)
    assert not torch.allclose(dec.net(sampled[:, 1])[..., :1], out["sigma"], atol=1e-3)


def test_triplane_field_feeds_the_decoder_a_third_of_a_lone_constant_plane():
    """Planes 1 and 2 zero, plane 0 constant v: inside the box every point's aggregated feature is v / 3."""
    torch.manual_seed(1)
    v = torch.randn(4)
    planes = torch.zeros(1, 3, 4, 8, 8)
    planes[0, 0] = v[:, None, None]
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, sampled):
            seen.append(sampled.mean(dim=1))
            return OSGDecoder.forward(dec, sampled)

    dec = OSGDecoder(n_features=4, hidden_dim=8, out_features=3)
    field = triplane_field(planes, Spy(), box_warp=2.0)
    pts = (torch.rand(1, 20, 3) * 2 - 1) * 0.8  # well inside [-1, 1]^3 (box_warp 2)
    out = field(pts, torch.zeros_like(pts))
    torch.testing.assert_close(seen[0], (v / 3).expand(1, 20, 4))
    with torch.no_grad():
        ref = dec.net((v / 3).expand(1, 20, 4))
    torch.testing.assert_close(out["sigma"], ref[..., :1])
