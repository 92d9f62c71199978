"""The README's Python API block runs as written on the shipped model (the pickle path swapped for None), and its
comments' shapes hold."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_python_block_runs_on_the_shipped_model(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'load_generator("ffhq512-128.pkl")' in code
    code = code.replace('load_generator("ffhq512-128.pkl")', "load_generator(None)")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - the README's own example
    G, planes, out = scope["G"], scope["planes"], scope["out"]
    assert planes.shape == (1, 3, 32, *planes.shape[-2:])  # (N, 3, 32, H, W)
    assert out["image"].shape == (1, 3, G.img_resolution, G.img_resolution)
    assert float(out["image_depth"].min()) > 0 and torch.isfinite(out["image"]).all()
    assert scope["mesh"].is_watertight and (tmp_path / "head.glb").stat().st_size > 1000
