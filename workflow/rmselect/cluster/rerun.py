"""Make code edits visible to Snakemake's rerun triggers.

Snakemake reruns a job when its ``params`` change (rerun trigger ``params``) but does not look
inside scripts a ``shell:`` command calls. :func:`code_hash` turns the *content* of a rule's
entry point -- and of every ``rmselect`` module it imports, followed transitively through the
source (``ast``), lazy imports inside functions included -- into a short hash. A rule that
adds it as a parameter (``params: code=code_hash("workflow/scripts/analysis_gains.py")``)
reruns, with everything downstream, exactly when that code changes -- not when a checkout
merely touches the files. Nobody lists the modules by hand, so a new import can never be
forgotten. Data folders a script reads (e.g. lm-eval task YAMLs) can be named too: a folder
counts with every file under it.

A package counts with the data it ships (:func:`package_data`): reaching a package's
``__init__.py`` adds its non-Python files and every file of its data folders (subfolders
without ``__init__.py``; a ``.py`` file there is data too, e.g. a loader that is copied, not
imported). So the YAML template and loader of ``rmselect.toy.lmeval``, which the toy data
job renders into its task directory, rerun that job when edited; a module that reads no
package's data sees no change in its hash. Keep data in the package that reads it: data of
the top package would count for every rule.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

#: The package whose imports are followed, and where it lives relative to the root.
PACKAGE = "rmselect"
PACKAGE_DIR = Path("workflow") / PACKAGE


def _module_file(root: Path, dotted: str) -> list[Path]:
    """The files of ``rmselect.a.b``: every ``__init__.py`` on the way and the module itself."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return []
    base = root / PACKAGE_DIR.parent
    out: list[Path] = []
    for k in range(1, len(parts) + 1):
        stem = base.joinpath(*parts[:k])
        if (stem / "__init__.py").exists():
            out.append(stem / "__init__.py")
        elif stem.with_suffix(".py").exists():
            out.append(stem.with_suffix(".py"))
            break
        else:
            break
    return out


def _hidden_or_cache(path: Path, under: Path) -> bool:
    """Byte code and hidden files (editor swap files, ``.DS_Store``) are not shipped data."""
    return any(part == "__pycache__" or part.startswith(".") for part in path.relative_to(under).parts)


def package_data(init: Path) -> list[Path]:
    """The data files the package of ``init`` (its ``__init__.py``) ships: the files in its
    folder that are not ``.py`` modules, and every file in its data folders (subfolders
    without ``__init__.py``, to any depth; a subpackage ships its own data), sorted."""
    pkg = init.parent
    out: list[Path] = []
    for f in pkg.iterdir():
        if _hidden_or_cache(f, pkg):
            continue
        if f.is_file() and f.suffix != ".py":
            out.append(f)
        elif f.is_dir() and not (f / "__init__.py").exists():
            out += [g for g in f.rglob("*") if g.is_file() and not _hidden_or_cache(g, pkg)]
    return sorted(out)


def _imports(path: Path, root: Path) -> list[Path]:
    """The ``rmselect`` files that ``path`` imports (absolute and relative imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg_dir = root / PACKAGE_DIR.parent
    here = ""
    if path.is_relative_to(pkg_dir):
        rel = path.relative_to(pkg_dir).with_suffix("")
        here = ".".join(rel.parts[:-1] if rel.name != "__init__" else rel.parts[:-1])
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                up = here.split(".")[: len(here.split(".")) - (node.level - 1)] if here else []
                mod = ".".join([*up, mod] if mod else up)
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]  # `from pkg import module`
    out: list[Path] = []
    for n in names:
        out += _module_file(root, n)
    return out


def code_files(*paths: str | Path, root: str | Path = ".") -> list[Path]:
    """The files behind ``paths``, sorted: each file with the ``rmselect`` modules it imports
    (transitively) and the data of every package on the way (:func:`package_data`), or every
    file under a folder (``.py`` files' imports followed too)."""
    base = Path(root)
    pkg_dir = base / PACKAGE_DIR
    todo: list[Path] = []
    for p in paths:
        full = base / p
        if full.is_dir():
            todo.extend(f for f in full.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
        elif full.exists():
            todo.append(full)
        else:
            raise FileNotFoundError(f"code_hash: {p} does not exist under {root}")
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if f.suffix == ".py":
            todo.extend(_imports(f, base))
        if f.name == "__init__.py" and f.is_relative_to(pkg_dir):
            todo.extend(package_data(f))
    return sorted(seen)


def code_hash(*paths: str | Path, root: str | Path = ".") -> str:
    """A 12-hex-digit SHA-256 over the names and contents of the files behind ``paths``."""
    h = hashlib.sha256()
    base = Path(root)
    for f in code_files(*paths, root=root):
        h.update(str(f.relative_to(base)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]
