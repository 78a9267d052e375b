#!/usr/bin/env python3
"""Build, inspect or remove the twin's opt-in compiled mode (mypyc) in this checkout.

    pip install -e ".[native]"        # mypy, whose mypyc compiles type-annotated Python to C extensions
    python tools/native.py build      # compile the hot modules in place (a few minutes, needs gcc + headers)
    python tools/native.py build twin/engine/alarm.py ...   # only these
    python tools/native.py status     # which modules run compiled, and whether they match their sources
    python tools/native.py clean      # back to pure Python

Why: the per-job work of a run is spread flat over a dozen modules (docs/performance.md); compiling them
removes the interpreter's dispatch around it. The compiled modules run the same code: the event log of
every run is bit-identical to pure Python's (CI builds them and compares, see .ci/run). The pure-Python
install stays the default; nothing here is needed to run or test the twin.

The extensions sit beside their sources (`twin/engine/alarm.cpython-311-...so` beside `alarm.py`),
with mypyc's shared runtime `twin/_native_lib__mypyc...so`, and `twin/_native.json` records each
compiled source's sha256: `import twin` refuses a tree whose sources changed after the build.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "native"

# The hot path of a run (see docs/performance.md, "Compiled mode"): one mypyc group, so that calls
# between these modules are native calls.
MODULES = (
    "twin/engine/agent.py",
    "twin/engine/alarm.py",
    "twin/engine/eventlog.py",
    "twin/engine/queueing.py",
    "twin/engine/trampoline.py",
    "twin/grid/network.py",
    "twin/grid/servers.py",
    "twin/dirac/catalog.py",
    "twin/dirac/services.py",
    "twin/dirac/transformation/agents.py",
    "twin/dirac/transformation/db.py",
    "twin/dirac/wms/jobagent.py",
    "twin/dirac/wms/jobdb.py",
    "twin/dirac/wms/system.py",
    "twin/dirac/wms/taskqueue.py",
)
GROUP = "twin._native_lib"
# mypyc builds with -Werror; its `x != x` NaN test trips gcc's tautological-compare warning.
CFLAGS = "-Wno-tautological-compare"

_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
modules, group = sys.argv[1].split(","), sys.argv[2]
setup(name="twin-native", ext_modules=mypycify(["--ignore-missing-imports", "--follow-imports=silent", *modules],
      opt_level="3", group_name=group, target_dir=sys.argv[3]),
      script_args=["-q", "build_ext", "--inplace", "--build-temp", sys.argv[3]])
"""


def _manifest_module() -> ModuleType:
    """twin/_native.py loaded by path: importing the package would refuse a stale tree this tool must clean."""
    spec = importlib.util.spec_from_file_location("_twin_native", ROOT / "twin" / "_native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shared_libs() -> list[Path]:
    native = _manifest_module()
    return sorted((ROOT / "twin").glob(native.SHARED_LIB + ".*"))


def clean() -> int:
    """Remove every compiled extension, the shared runtime, the manifest and the build folder."""
    native = _manifest_module()
    removed = list(native.extensions(ROOT / "twin").values()) + _shared_libs()
    for path in removed:
        path.unlink()
    native.MANIFEST.unlink(missing_ok=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    print(f"native: removed {len(removed)} compiled file(s); the twin runs pure Python")
    return 0


def build(modules: tuple[str, ...] = MODULES) -> int:
    """Compile `modules` in place as one group and record their sources' sha256."""
    if importlib.util.find_spec("mypyc") is None:
        print('native: mypyc is not installed: pip install -e ".[native]"', file=sys.stderr)
        return 2
    clean()
    BUILD.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CFLAGS": f"{os.environ.get('CFLAGS', '')} {CFLAGS}".strip()}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _SETUP, ",".join(modules), GROUP, str(BUILD)],
                          cwd=ROOT, env=env)
    if done.returncode != 0:
        clean()
        print("native: the build failed (see above); the twin stays pure Python", file=sys.stderr)
        return 1
    native = _manifest_module()
    record = {"mypy": _mypy_version(), "modules": {m: native.source_sha256(ROOT / m) for m in modules}}
    native.MANIFEST.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    problem = native.stale(ROOT / "twin", native.MANIFEST)
    if problem is not None:
        print(f"native: the build left an inconsistent tree: {problem}", file=sys.stderr)
        return 1
    print(f"native: {len(modules)} modules compiled: {', '.join(native.compiled_modules(ROOT / 'twin'))}")
    return 0


def status() -> int:
    """Print which modules run compiled; exit 1 when the extensions do not match their sources."""
    native = _manifest_module()
    compiled = native.compiled_modules(ROOT / "twin")
    problem = native.stale(ROOT / "twin", native.MANIFEST)
    print(f"native: {len(compiled)} compiled module(s)" + (f": {', '.join(compiled)}" if compiled else " (pure Python)"))
    if problem is not None:
        print(f"native: stale: {problem}", file=sys.stderr)
        return 1
    return 0


def _mypy_version() -> str:
    from mypy.version import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("build", "status", "clean"))
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="build only these source files (default: the hot path, MODULES in this file)")
    args = parser.parse_args(argv)
    if args.action != "build" and args.modules:
        parser.error(f"{args.action} takes no MODULE arguments")
    unknown = [m for m in args.modules if not (ROOT / m).is_file() or not m.startswith("twin/") or not m.endswith(".py")]
    if unknown:
        parser.error(f"MODULE {unknown[0]!r}: expected a source file of the twin package, relative to {ROOT} (e.g. twin/engine/alarm.py)")
    if args.action == "build":
        return build(tuple(args.modules) or MODULES)
    return {"status": status, "clean": clean}[args.action]()


if __name__ == "__main__":
    sys.exit(main())
