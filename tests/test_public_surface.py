"""A deliberate public surface, flyte-sdk's way: a module is private (`_name`, imported only inside its
package: `make lint`'s private-modules contract) or says in `__all__` what it exports, and our
modules import from one another only what is exported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "hitl_chatops": "src/hitl_chatops",
    "hitl_chatops.bot": "bot",
    "hitl_chatops.adapters": "adapters",
    "hitl_chatops.plugin": "plugin",
}


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    """Every module of the package: its dotted name, its file, its syntax tree."""
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("**/*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            yield name, path, ast.parse(path.read_text(), str(path))


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def _exported(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":  # names made on first use
            names |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _target(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_every_public_module_says_what_it_exports() -> None:
    missing, undefined = [], []
    for name, _, tree in _modules():
        exported = _exported(tree)
        if _private(name) or not any(not isinstance(node, ast.Expr) for node in tree.body):
            continue  # private, or an empty package (a docstring at most)
        if exported is None:
            missing.append(name)
        else:
            undefined += [f"{name}.{n}" for n in sorted(exported - _defined(tree))]
    assert missing == [], f"give these modules an __all__ (or make them private, `_name`): {missing}"
    assert undefined == [], f"__all__ names what the module does not define: {undefined}"


def test_modules_import_from_one_another_only_what_is_exported() -> None:
    modules = {name: (path, tree) for name, path, tree in _modules()}
    found = []
    for importer, (path, tree) in modules.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _target(importer, path.name == "__init__.py", node)
            if target not in modules or _private(target):
                continue  # another library, or a private module (its package's own business)
            exported = _exported(modules[target][1]) or set()
            found += [
                f"{importer} imports {target}.{alias.name}"
                for alias in node.names
                if alias.name not in exported and f"{target}.{alias.name}" not in modules
            ]
    assert found == [], f"add these to the __all__ of the module they come from, or do not use them: {found}"
