"""The README's architecture tree is exact: every module of core/, cli/, viewer/ and scripts/ is named in it (cli's
commands/ are one module per command: the CLI table names them), every file it names exists, and every top-level
folder of the repository has its line."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Architecture") :]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def test_every_module_is_in_the_tree_and_every_named_file_exists():
    tree = _tree()
    named = set(re.findall(r"\b([A-Za-z_0-9]+\.(?:py|sh|json))\b", tree))
    modules = {
        p.name
        for root in ("core", "cli", "viewer", "scripts")
        for p in (ROOT / root).rglob("*")
        if p.suffix in (".py", ".sh")
        and p.name != "__init__.py"
        and "__pycache__" not in p.parts
        and p.relative_to(ROOT).parts[:2] != ("cli", "commands")
    }
    assert not modules - named, f"modules missing from the README's tree: {sorted(modules - named)}"
    files = {Path(line).name for line in _tracked()}
    code = {n for n in named if not n.endswith(".json")}  # (dataset.json there is EG3D's format, not a file of ours)
    assert not code - files, f"the README's tree names files that do not exist: {sorted(code - files)}"


def test_every_top_level_folder_has_its_line():
    folders = {line.split("/")[0] for line in _tracked() if "/" in line}
    lines = {m.group(1) for m in re.finditer(r"^([.\w]+)/", _tree(), re.M)}
    assert folders == lines, f"folders without a line: {folders - lines}; lines without a folder: {lines - folders}"


def _tracked() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
