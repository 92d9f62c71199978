"""DreamFusion text-to-3D: a shaded NeRF optimised through a frozen text-to-image diffusion prior.

field.py         density + albedo tri-plane field (blob init), background MLP, normals from the density gradient
shading.py       point light + ambient: albedo / lambertian / textureless
views.py         random training cameras; prompts.py  the prompt and its view-dependent variants
methods.py       the guidance methods by name (label, default scale; torch-free)
guidance.py      SDS, CSD and VSD behind one interface
profiles.py      a prior's own settings (the small-world prior's background, light, scale, lr decay)
schedules.py     timestep annealing and lr decay as closed forms of the step
regularisers.py  orientation, sparsity, entropy and opacity losses on the rendered rays
optimize.py      the per-prompt optimisation: step(), render(camera), checkpoints, progress
export.py        preview grids, orbit video, mesh; acceptance.py  the small-world acceptance measurements
"""
