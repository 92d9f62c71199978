"""tristudio.viewer: the desktop app (Dear ImGui via imgui-bundle, OpenGL) and the `tristudio` command line."""
