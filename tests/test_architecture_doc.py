"""docs/architecture.md stays true: every file its formula table names exists, every function or class it names in a
row is defined in that row's files, and every code name in the data-flow drawing is defined in the package."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _definitions(path: Path) -> set[str]:
    """Names defined in a module: functions, classes, `Class.method`, and module-level assignments."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{m.name}" for m in node.body if isinstance(m, ast.FunctionDef)}
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _formula_rows() -> list[tuple[str, str]]:
    table = DOC[DOC.index("## Where each formula lives") :].split("\n## ")[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "`core/" in line]
    return [(cells[0], cells[-1]) for cells in rows]


def test_the_formula_table_names_real_files_and_their_definitions():
    rows = _formula_rows()
    assert len(rows) >= 25, "the formula table lost its rows"
    for formula, where in rows:
        files = [ROOT / f for f in re.findall(r"`(core/[\w/]+\.py)`", where)]
        assert files, f"row {formula[:40]!r} names no file"
        missing = [str(f.relative_to(ROOT)) for f in files if not f.exists()]
        assert not missing, f"row {formula[:40]!r}: no such file {missing}"
        defined = set().union(*(_definitions(f) for f in files))
        named = [n for group in re.findall(r"\(([^()]*)\)", where) for n in re.findall(r"`([\w.]+)`", group)]
        undefined = [n for n in named if n not in defined]
        assert not undefined, f"row {formula[:40]!r}: {undefined} not defined in {[f.name for f in files]}"


def test_the_data_flow_drawing_names_defined_code():
    drawing = DOC[: DOC.index("## Where each formula lives")]
    camel = set(re.findall(r"\b([A-Z][a-z]+(?:[A-Z][a-z]+)+)\b", drawing))  # class names: StratifiedImportanceSampler
    calls = set(re.findall(r"\b([a-z]+_[a-z_]+)(?=\()", drawing)) | {"triplane_field"}  # render_rays(...)
    defined = set().union(*(_definitions(p) for d in ("core", "viewer") for p in (ROOT / d).rglob("*.py")))
    assert camel and calls
    assert not (camel | calls) - defined, f"the drawing names undefined code: {sorted((camel | calls) - defined)}"
