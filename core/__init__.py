"""tristudio.core: the engine (cameras, tri-plane field, volume renderer, worlds, EG3D, DreamFusion, priors, metrics).

Never imports the GUI (imgui, glfw, OpenGL) or `tristudio.viewer`.
"""

__all__ = ["load_generator"]


def load_generator(path, device="cpu"):
    """Load an EG3D generator from an official network pickle or a tristudio model folder (see core/eg3d/load.py)."""
    from .eg3d.load import load_generator as _load

    return _load(path, device=device)
