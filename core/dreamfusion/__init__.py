"""DreamFusion text-to-3D: a shaded NeRF optimised through a frozen text-to-image diffusion prior.

field.py      density + albedo tri-plane field (blob init), background MLP, normals from the density gradient
shading.py    point light + ambient: albedo / lambertian / textureless
views.py      random training cameras; prompts.py  view-dependent prompts
guidance.py   SDS, CSD and VSD behind one interface
optimize.py   the per-prompt optimisation: step(), render(camera), checkpoints, progress
"""
