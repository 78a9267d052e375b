"""Which of the twin's modules run compiled, and whether they still match the sources they were built from.

The compiled mode is opt-in (`python tools/native.py build`): mypyc turns the hot modules into C
extensions that sit beside their `.py` files, and Python imports an extension before a source file of
the same name. An extension built from older sources would then run silently instead of the code in
the checkout. mypy type-checks the compiled modules against every module they import, and compiled code
checks those types at run time, so the build records the sha256 of every source of the package
(`twin/_native.json`: "modules" compiled, "sources" all), and `twin/__init__.py` refuses to import a
tree where any of them changed, or where an extension or mypyc's shared runtime is missing.

Only extensions the running interpreter would load count: a build for another Python version is
invisible to this one, which then runs pure Python.

Standard library only, no import of the twin package: `tools/native.py` loads this file by path so that
it can clean a stale tree that the package itself refuses to import.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / "_native.json"
SHARED_LIB = "_native_lib__mypyc"  # mypyc's runtime for the group `twin._native_lib`, shared by every module
_FIX = "run `python tools/native.py build` again, or `python tools/native.py clean` for pure Python"


def source_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loadable(name: str) -> str | None:
    """The module name this interpreter would load from file `name`, or None (not an extension of ours)."""
    for suffix in EXTENSION_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.isidentifier() else None  # `alarm.cpython-312-...` is another Python's
    return None


def extensions(package: Path = PACKAGE) -> dict[str, Path]:
    """Compiled extension files under the package that this interpreter would import, by the source they
    replace (`twin/engine/alarm.py`); mypyc's shared runtime is not one of them."""
    found: dict[str, Path] = {}
    root = package.parent
    for folder, _dirs, files in os.walk(package):
        for name in files:
            stem = _loadable(name)
            if stem is None or (Path(folder) == package and stem == SHARED_LIB):
                continue
            found[(Path(folder) / (stem + ".py")).relative_to(root).as_posix()] = Path(folder) / name
    return found


def shared_runtimes(package: Path = PACKAGE) -> list[Path]:
    """mypyc's shared runtime files in the package, for this Python or another (`clean` removes them all)."""
    return sorted(package.glob(SHARED_LIB + ".*"))


def sources(package: Path = PACKAGE) -> dict[str, str]:
    """Every source of the package by relative path -> sha256 (what a build was type-checked against)."""
    root = package.parent
    return {p.relative_to(root).as_posix(): source_sha256(p) for p in sorted(package.rglob("*.py"))}


def read_manifest(path: Path = MANIFEST) -> dict[str, dict[str, str]]:
    """The last build's record: {"modules": compiled source -> sha256, "sources": every source -> sha256}.
    ImportError (one line, naming the file) when it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"modules": {}, "sources": {}}
    except (OSError, ValueError) as exc:
        raise ImportError(f"twin: {path}: unreadable compiled-mode manifest ({exc}); {_FIX}") from None
    record: dict[str, dict[str, str]] = {}
    for key in ("modules", "sources"):
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, dict):
            raise ImportError(f"twin: {path}: {key}: expected a mapping of source path to sha256; {_FIX}")
        record[key] = {str(k): str(v) for k, v in value.items()}
    return record


def stale(package: Path = PACKAGE, manifest: Path = MANIFEST) -> str | None:
    """Why the compiled extensions cannot be trusted (one line), or None when they match the sources they
    were built from (or there are none). An unreadable manifest raises ImportError."""
    built = extensions(package)
    if not built:
        return None
    record = read_manifest(manifest)
    unrecorded = sorted(set(built) - set(record["modules"]))
    if unrecorded:
        return f"{unrecorded[0]} has a compiled extension that {manifest.name} does not record"
    missing = sorted(set(record["modules"]) - set(built))
    if missing:
        return f"{missing[0]}: {manifest.name} records it compiled but its extension is missing"
    if not any(_loadable(p.name) == SHARED_LIB for p in shared_runtimes(package)):
        return f"mypyc's shared runtime {package.name}/{SHARED_LIB} is missing"
    now = sources(package)
    for source, sha in sorted({**record["sources"], **record["modules"]}.items()):
        if now.get(source) != sha:
            return f"{source} changed since the compiled extensions were built"
    added = sorted(set(now) - set(record["sources"]))
    if added:
        return f"{added[0]} is new since the compiled extensions were built"
    return None


def compiled_modules(package: Path = PACKAGE) -> list[str]:
    """Module names that run compiled in this process's tree (for run.json and benchmark rows)."""
    return sorted(source[:-3].replace("/", ".") for source in extensions(package))
