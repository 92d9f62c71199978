"""Package layout: the top-level folders are sub-packages of the `tristudio` namespace.

core/    -> tristudio.core     (the engine; never imports the GUI)
viewer/  -> tristudio.viewer   (the app and the `tristudio` CLI)
shaders/ -> tristudio.shaders  (GLSL sources, package data)
"""

from setuptools import find_packages, setup

MAPPING = {"tristudio.core": "core", "tristudio.viewer": "viewer", "tristudio.shaders": "shaders"}

packages = []
package_dir = {}
for name, folder in MAPPING.items():
    packages.append(name)
    package_dir[name] = folder
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "tristudio.shaders": ["*.glsl"],
        "tristudio.core": ["assets/*", "assets/**/*"],
    },
    include_package_data=True,
)
