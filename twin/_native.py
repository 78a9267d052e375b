"""Which of the twin's modules run compiled, and whether they still match their sources.

The compiled mode is opt-in (`python tools/native.py build`): mypyc turns the hot modules into C
extensions that sit beside their `.py` files, and Python imports an extension before a source file of
the same name. An extension built from an older source would then run silently instead of the code in
the checkout, so the build writes a manifest (`twin/_native.json`: each compiled module's source
sha256) and `twin/__init__.py` refuses to import a tree whose extensions and sources disagree.

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


def source_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extensions(package: Path = PACKAGE) -> dict[str, Path]:
    """Compiled extension files under the package, by the module they replace (`twin/engine/alarm.py`)."""
    found: dict[str, Path] = {}
    root = package.parent
    for folder, _dirs, files in os.walk(package):
        for name in files:
            suffix = next((s for s in EXTENSION_SUFFIXES if name.endswith(s)), None)
            if suffix is None or name.startswith(SHARED_LIB):
                continue
            source = Path(folder) / (name[: -len(suffix)] + ".py")
            found[source.relative_to(root).as_posix()] = Path(folder) / name
    return found


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """The compiled modules the last build recorded, by relative source path -> source sha256."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ImportError(f"twin: {path}: unreadable compiled-mode manifest ({exc}); "
                          "run `python tools/native.py clean` or `python tools/native.py build`") from None
    modules = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(modules, dict):
        raise ImportError(f"twin: {path}: modules: expected a mapping of source path to sha256; "
                          "run `python tools/native.py clean` or `python tools/native.py build`")
    return {str(k): str(v) for k, v in modules.items()}


def stale(package: Path = PACKAGE, manifest: Path = MANIFEST) -> str | None:
    """Why the compiled extensions cannot be trusted (one line), or None when they match their sources
    (or there are none)."""
    built = extensions(package)
    if not built:
        return None
    recorded = read_manifest(manifest)
    root = package.parent
    unrecorded = sorted(set(built) - set(recorded))
    if unrecorded:
        return f"{unrecorded[0]} has a compiled extension that {manifest.name} does not record"
    for source, sha in sorted(recorded.items()):
        if source not in built:
            return f"{source}: {manifest.name} records it compiled but its extension is missing"
        path = root / source
        if not path.is_file() or source_sha256(path) != sha:
            return f"{source} changed since its compiled extension was built"
    return None


def compiled_modules(package: Path = PACKAGE) -> list[str]:
    """Module names that run compiled in this process's tree (for run.json and benchmark rows)."""
    return sorted(source[:-3].replace("/", ".") for source in extensions(package))
