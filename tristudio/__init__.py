"""tristudio: a desktop studio for 3D generative models trained without 3D data.

The sub-packages are the repository's top-level folders, linked here so that an import path is a file path
(`tristudio.core.render.volume` is `tristudio/core/render/volume.py`, i.e. `core/render/volume.py`) for Python,
editors and type checkers alike, installed or not:

    core/     tristudio.core     the engine: cameras, fields, renderer, EG3D, DreamFusion, priors, metrics, io
    viewer/   tristudio.viewer   the OpenGL + Dear ImGui app, its panels, GL resources and workers
    cli/      tristudio.cli      the `tristudio` command line (typer)
    shaders/  tristudio.shaders  GLSL sources, loaded at run time
"""
