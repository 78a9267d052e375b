"""The compiled mode's guard rails: a tree whose extensions do not match their sources never runs,
and tools/native.py refuses bad arguments in one line. (The compiled modules themselves are checked by
CI, which builds them and runs the quick suite, golden event logs included, against them.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from twin import _native

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = EXTENSION_SUFFIXES[0]


def _tree(tmp_path: Path) -> Path:
    """A package with two sources: twin/a.py and twin/sub/b.py."""
    package = tmp_path / "twin"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    return package


def _compile(package: Path, *compiled: str, record: bool = True) -> Path:
    """Fake a build of `compiled`: an extension file beside each, mypyc's shared runtime, and (if `record`)
    the manifest with every source's sha256."""
    manifest = package / "_native.json"
    for source in compiled:
        path = package.parent / source
        path.with_name(path.stem + SUFFIX).write_bytes(b"\x7fELF")
    (package / (_native.SHARED_LIB + SUFFIX)).write_bytes(b"\x7fELF")
    if record:
        every = _native.sources(package)
        manifest.write_text(json.dumps({"mypy": "x", "modules": {s: every[s] for s in compiled}, "sources": every}))
    return manifest


def test_a_pure_tree_is_fine(tmp_path):
    package = _tree(tmp_path)
    assert _native.stale(package, package / "_native.json") is None
    assert _native.compiled_modules(package) == []


def test_a_fresh_build_is_fine_and_names_its_modules(tmp_path):
    package = _tree(tmp_path)
    manifest = _compile(package, "twin/a.py", "twin/sub/b.py")
    assert _native.stale(package, manifest) is None
    assert _native.compiled_modules(package) == ["twin.a", "twin.sub.b"]


@pytest.mark.parametrize("damage, expected", [
    (lambda p, m: (p / "sub" / "b.py").write_text("B = 3\n"), "twin/sub/b.py changed since the compiled extensions were built"),
    (lambda p, m: (p / "sub" / "b.py").unlink(), "twin/sub/b.py changed since the compiled extensions were built"),
    (lambda p, m: (p / "c.py").write_text("C = 3\n"), "twin/c.py is new since the compiled extensions were built"),
    (lambda p, m: (p / f"a{SUFFIX}").unlink(), "twin/a.py: _native.json records it compiled but its extension is missing"),
    (lambda p, m: (p / (_native.SHARED_LIB + SUFFIX)).unlink(), "mypyc's shared runtime twin/_native_lib__mypyc is missing"),
    (lambda p, m: m.unlink(), "twin/a.py has a compiled extension that _native.json does not record"),
    (lambda p, m: (p / f"c{SUFFIX}").write_bytes(b""), "twin/c.py has a compiled extension that _native.json does not record"),
])
def test_a_tree_that_no_longer_matches_its_build_is_stale(tmp_path, damage, expected):
    package = _tree(tmp_path)
    manifest = _compile(package, "twin/a.py", "twin/sub/b.py")
    damage(package, manifest)
    assert _native.stale(package, manifest) == expected


def test_an_edit_to_a_module_the_build_only_type_checked_is_stale_too(tmp_path):
    """Compiled code checks the types of the modules it imports at run time: an edit there needs a rebuild."""
    package = _tree(tmp_path)
    manifest = _compile(package, "twin/a.py")
    assert _native.stale(package, manifest) is None
    (package / "sub" / "b.py").write_text("B = 'two'\n")
    assert _native.stale(package, manifest) == "twin/sub/b.py changed since the compiled extensions were built"


def test_another_pythons_build_is_invisible(tmp_path):
    """An extension tagged for another interpreter is not imported by this one: pure Python, not stale."""
    package = _tree(tmp_path)
    (package / "a.cpython-399-x86_64-linux-gnu.so").write_bytes(b"")
    assert _native.extensions(package) == {}
    assert _native.stale(package, package / "_native.json") is None


@pytest.mark.parametrize("text, expected", [
    ("{not json", "unreadable compiled-mode manifest"),
    ('{"modules": []}', "modules: expected a mapping of source path to sha256"),
    ('{"modules": {}}', "sources: expected a mapping of source path to sha256"),
    ("[]", "modules: expected a mapping of source path to sha256"),
])
def test_a_damaged_manifest_is_refused_with_its_path(tmp_path, text, expected):
    package = _tree(tmp_path)
    manifest = _compile(package, "twin/a.py")
    manifest.write_text(text)
    with pytest.raises(ImportError, match=expected) as caught:
        _native.stale(package, manifest)
    assert str(manifest) in str(caught.value)


@pytest.fixture
def stale_copy(tmp_path):
    """A copy of the twin package whose alarm module has an extension no manifest records."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "twin", copy / "twin", ignore=shutil.ignore_patterns("__pycache__", "*.so", "_native.json"))
    (copy / "twin" / "engine" / f"alarm{SUFFIX}").write_bytes(b"")
    return copy


def _python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_twin_command_refuses_a_stale_tree_in_one_line(stale_copy):
    done = _python(["-m", "twin.cli", "--help"], stale_copy)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "twin: compiled modules are stale: twin/engine/alarm.py has a compiled extension that _native.json does not "
        "record; rebuild with `python tools/native.py build` or remove them with `python tools/native.py clean`"]
    assert "Traceback" not in done.stderr


def test_the_twin_command_refuses_a_damaged_manifest_in_one_line(stale_copy):
    (stale_copy / "twin" / "_native.json").write_text("")
    for argv0 in ("-m twin.cli", "console script"):
        args = ["-m", "twin.cli", "--help"] if argv0.startswith("-m") else [
            "-c", "import sys; sys.argv[0] = '/venv/bin/twin'; import twin"]
        done = _python(args, stale_copy)
        assert done.returncode == 2, argv0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("twin: ") and "_native.json: unreadable compiled-mode manifest" in lines[0]


def test_the_console_script_refuses_a_stale_tree_in_one_line(stale_copy):
    done = _python(["-c", "import sys; sys.argv[0] = '/venv/bin/twin'; import twin"], stale_copy)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "twin: compiled modules are stale: twin/engine/alarm.py has a compiled extension that _native.json does not "
        "record; rebuild with `python tools/native.py build` or remove them with `python tools/native.py clean`"]


def test_importing_a_stale_tree_raises_import_error(stale_copy):
    done = _python(["-c", "import twin"], stale_copy)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("ImportError: twin: compiled modules are stale: twin/engine/alarm.py")


@pytest.mark.parametrize("args, expected", [
    ([], "the following arguments are required: action"),
    (["compile"], "argument action: invalid choice: 'compile'"),
    (["status", "twin/engine/alarm.py"], "status takes no MODULE arguments"),
    (["clean", "twin/engine/alarm.py"], "clean takes no MODULE arguments"),
    (["build", "twin/engine/no_such_module.py"], "MODULE 'twin/engine/no_such_module.py': expected a source file of the twin package"),
    (["build", "tools/native.py"], "MODULE 'tools/native.py': expected a source file of the twin package"),
    (["build", "twin/../tools/native.py"], "MODULE 'twin/../tools/native.py': expected a source file of the twin package"),
    (["build", "twin/_native.json"], "MODULE 'twin/_native.json': expected a source file of the twin package"),
])
def test_native_tool_refuses_bad_arguments(args, expected):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "native.py"), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert expected in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr


def test_native_status_reports_this_tree():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "native.py"), "status"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    compiled = _native.compiled_modules()
    expected = f"native: {len(compiled)} compiled module(s)" + (f": {', '.join(compiled)}" if compiled else " (pure Python)")
    assert done.stdout.strip() == expected


def test_version_says_how_the_checkout_runs(capsys):
    from twin.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    compiled = _native.compiled_modules()
    assert capsys.readouterr().out.strip() == (
        f"twin 0.1.0 ({len(compiled)} modules compiled)" if compiled else "twin 0.1.0 (pure Python)")


def test_status_names_a_damaged_manifest_and_clean_recovers_the_tree(stale_copy):
    shutil.copytree(ROOT / "tools", stale_copy / "tools")
    (stale_copy / "twin" / "_native.json").write_text("{")
    done = _python(["tools/native.py", "status"], stale_copy)
    assert done.returncode == 1
    assert done.stdout.strip() == "native: 1 compiled module(s): twin.engine.alarm"
    assert len(done.stderr.strip().splitlines()) == 1 and "unreadable compiled-mode manifest" in done.stderr
    done = _python(["tools/native.py", "clean"], stale_copy)
    assert (done.returncode, done.stdout.strip()) == (0, "native: removed 1 compiled file(s); the twin runs pure Python")
    assert not (stale_copy / "twin" / "_native.json").exists()
    assert _python(["-c", "import twin"], stale_copy).returncode == 0


def test_the_compiled_pass_imports_what_it_built():
    """CI's compiled pass sets TWIN_EXPECT_COMPILED: the suite must then really run the extensions."""
    expected = os.environ.get("TWIN_EXPECT_COMPILED")
    if expected is None:
        pytest.skip("TWIN_EXPECT_COMPILED is set by CI's compiled pass only")
    import twin.dirac.catalog
    import twin.engine.alarm

    assert len(_native.compiled_modules()) == int(expected)
    assert twin.engine.alarm.__file__.endswith(SUFFIX) and twin.dirac.catalog.__file__.endswith(SUFFIX)
