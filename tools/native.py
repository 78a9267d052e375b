#!/usr/bin/env python3
"""Build, inspect or remove the twin's opt-in compiled mode (mypyc) in this checkout.

    pip install -e ".[native]"        # mypy, whose mypyc compiles type-annotated Python to C extensions
    python tools/native.py build      # compile the hot modules in place (a few minutes, needs gcc + headers)
    python tools/native.py build twin/engine/alarm.py ...   # only these
    python tools/native.py status     # which modules run compiled, and whether they match their sources
    python tools/native.py clean      # back to pure Python

Why: the per-job work of a run is spread flat over a dozen modules (docs/performance.md); compiling them
removes the interpreter's dispatch around it. The compiled modules run the same code: CI builds them and
runs the quick suite against them, whose golden event logs (tests/test_golden_logs.py: faults, FTS3,
exact charging, operator actions) must stay bit-identical to pure Python's (see .ci/run). The pure-Python
install stays the default; nothing here is needed to run or test the twin. What differs, and the
measured speed-up: docs/performance.md, "Compiled mode".

The extensions sit beside their sources (`twin/engine/alarm.cpython-311-...so` beside `alarm.py`),
with mypyc's shared runtime `twin/_native_lib__mypyc...so`, and `twin/_native.json` records the sha256 of
every source the build compiled or type-checked against: `import twin` refuses a tree where one changed.
"""

from __future__ import annotations

import argparse
import functools
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
    "twin/engine/loop.py",
    "twin/engine/queueing.py",
    "twin/engine/resume.py",
    "twin/engine/trampoline.py",
    "twin/engine/wakeup.py",
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
    "twin/grid/site.py",
    "twin/grid/storage.py",
    "twin/grid/tape.py",
    "twin/dirac/wms/scheduling.py",
    "twin/dirac/wms/failures.py",
    "twin/dirac/rms.py",
    "twin/dirac/rms_system.py",
    "twin/dirac/transformation/trail.py",
    "twin/dirac/fts3.py",
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
      script_args=["-q", "build_ext", "--inplace", "--build-temp", sys.argv[3], "--build-lib", sys.argv[3] + "/lib"])
"""


@functools.cache
def _manifest_module() -> ModuleType:
    """twin/_native.py loaded by path (once): importing the package would refuse a stale tree this tool must clean."""
    spec = importlib.util.spec_from_file_location("_twin_native", ROOT / "twin" / "_native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean(quiet: bool = False) -> int:
    """Remove every compiled extension, the shared runtime, the manifest and the build folder."""
    native = _manifest_module()
    removed = list(native.extensions(ROOT / "twin").values()) + native.shared_runtimes(ROOT / "twin")
    for path in removed:
        path.unlink()
    native.MANIFEST.unlink(missing_ok=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    if BUILD.parent.is_dir() and not any(BUILD.parent.iterdir()):
        BUILD.parent.rmdir()  # build/ was made for this only
    if not quiet:
        print(f"native: removed {len(removed)} compiled file(s); the twin runs pure Python")
    return 0


def build(modules: tuple[str, ...] = MODULES) -> int:
    """Compile `modules` in place as one group and record the sources it was built from."""
    if importlib.util.find_spec("mypyc") is None:
        print('native: mypyc is not installed: pip install -e ".[native]"', file=sys.stderr)
        return 2
    clean(quiet=True)
    native = _manifest_module()
    before = native.sources(ROOT / "twin")  # read before compiling: an edit during the build must not pass
    BUILD.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CFLAGS": f"{os.environ.get('CFLAGS', '')} {CFLAGS}".strip()}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _SETUP, ",".join(modules), GROUP, str(BUILD)],
                          cwd=ROOT, env=env)
    if done.returncode != 0:
        return _abandon("the build failed (see above)")
    if native.sources(ROOT / "twin") != before:
        return _abandon("sources changed during the build")
    record = {"mypy": _mypy_version(), "modules": {m: before[m] for m in modules}, "sources": before}
    staging = native.MANIFEST.with_suffix(".json.tmp")
    staging.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(staging, native.MANIFEST)  # whole or absent: an interrupted build leaves no half manifest
    problem = native.stale(ROOT / "twin", native.MANIFEST)
    if problem is not None:
        return _abandon(f"the build left an inconsistent tree: {problem}")
    print(f"native: {len(modules)} modules compiled with mypyc {record['mypy']}: "
          f"{', '.join(native.compiled_modules(ROOT / 'twin'))}")
    return 0


def _abandon(why: str) -> int:
    clean(quiet=True)
    print(f"native: {why}; the twin stays pure Python", file=sys.stderr)
    return 1


def status() -> int:
    """Print which modules run compiled; exit 1 when the extensions do not match their sources."""
    native = _manifest_module()
    compiled = native.compiled_modules(ROOT / "twin")
    print(f"native: {len(compiled)} compiled module(s)" + (f": {', '.join(compiled)}" if compiled else " (pure Python)"))
    try:
        problem = native.stale(ROOT / "twin", native.MANIFEST)
    except ImportError as exc:
        problem = str(exc)
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
    modules = []
    for given in args.modules:
        path = (ROOT / given).resolve()
        if not (path.is_file() and path.suffix == ".py" and path.is_relative_to(ROOT / "twin")):
            parser.error(f"MODULE {given!r}: expected a source file of the twin package, relative to {ROOT} "
                         "(e.g. twin/engine/alarm.py)")
        modules.append(path.relative_to(ROOT).as_posix())
    if args.action == "build":
        return build(tuple(modules) or MODULES)
    return {"status": status, "clean": clean}[args.action]()


if __name__ == "__main__":
    sys.exit(main())
