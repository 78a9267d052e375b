"""Output folders that never lose a user's results (issue 12).

Every command that writes (run, sweep, compare, report, validate --out) follows one policy:

- `check_out` runs before any work: `--out` must not be a file, and an existing non-empty folder
  is refused unless `--force` (its results would be lost);
- outputs are written into a hidden staging folder beside `--out` (`.NAME.staging-PID`) and the
  folder is renamed into place only when complete, so `--out` never holds files of two runs;
- `run.json` is written last: what wrote the folder, the scenario hash and seed, the twin version,
  the status ("complete" or "incomplete") and every file with its size and sha256, so a reader can
  tell a whole folder from a damaged or mixed one (`read_manifest`, `verify`).

An interrupted run (SIGINT) still renames its staging folder into place, with status
"incomplete" and the simulated time reached; when `--out` held earlier results (`--force`), the
partial outputs go to `NAME.incomplete` beside it instead, so the earlier results survive.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from twin import __version__
from twin._native import compiled_modules
from twin.errors import TwinError

MANIFEST = "run.json"
MANIFEST_FORMAT = 1
COMPLETE, INCOMPLETE = "complete", "incomplete"
_CHUNK = 1 << 20


def check_out(out: Path, force: bool, option: str = "--out", inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an output folder that would lose results or cannot be written; call before any work.

    `--force` replaces only what twin wrote (a folder with a twin run.json) or an empty folder, never
    a folder inside another run's folder (its manifest would not list the new files) or one of `inputs`."""
    out = absolute(out)
    if out == out.parent:
        raise TwinError(f"{option} {out}: expected a folder that can be replaced, not the file-system root")
    if out.exists() and not out.is_dir():
        raise TwinError(f"{option} {out}: expected a folder, but a file of that name exists")
    _check_not_inside_a_run(out, option, inputs)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise TwinError(f"{option} {out}: the folder is not empty (its files would be lost); "
                            "choose another folder or pass --force to replace it")
        if not _written_by_twin(out):
            raise TwinError(f"{option} {out}: the folder was not written by twin (no {MANIFEST}); "
                            "--force replaces only twin output folders or empty ones, choose another folder")
    check_parent(out, option)
    _probe(out, option)


def absolute(path: Path) -> Path:
    """`path` made absolute with '.' and '..' removed (symlinks kept): `--out .` has a name to rename."""
    return Path(os.path.abspath(path))


def _written_by_twin(folder: Path) -> bool:
    try:
        return read_manifest(folder) is not None
    except TwinError:
        return False


def _check_not_inside_a_run(out: Path, option: str, inputs: tuple[Path, ...]) -> None:
    for folder in out.parents:
        if (folder / MANIFEST).is_file():
            raise TwinError(f"{option} {out}: expected a folder outside the run folder {folder} "
                            f"(its {MANIFEST} would not list the new files)")
    for given in map(absolute, inputs):
        if out == given or out in given.parents:
            raise TwinError(f"{option} {out}: expected a folder apart from the input {given} (it would be replaced)")


def _probe(out: Path, option: str) -> None:
    """Create and remove a folder where the staging folder will go: fails now, not after simulating."""
    parent = _existing_ancestor(out.parent)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent))
    except OSError as exc:
        raise TwinError(f"{option} {out}: cannot create folders in {parent} ({exc.strerror or exc})") from None


def check_parent(path: Path, option: str) -> None:
    """`path` can be created: its nearest existing ancestor is a writable folder."""
    parent = _existing_ancestor(Path(path).parent)
    if not parent.is_dir():
        raise TwinError(f"{option} {path}: cannot create it, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TwinError(f"{option} {path}: cannot create it ({parent} is not writable)")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def scenario_hash(scenario_data: dict[str, Any]) -> str:
    """sha256 of the resolved scenario as canonical JSON: equal hashes, equal inputs."""
    text = json.dumps(scenario_data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Staging:
    """A hidden folder beside `out` that becomes `out`, complete, on `commit` (see the module doc).

    Use as a context manager: leaving it by an exception other than KeyboardInterrupt removes the
    staging folder; `commit(status=INCOMPLETE)` before re-raising keeps partial outputs."""

    def __init__(self, out: Path, kind: str, force: bool = False, info: dict[str, Any] | None = None) -> None:
        self.out = absolute(out)
        self.kind, self.force = kind, force
        self.info = dict(info or {})
        self.path = self.out.parent / f".{self.out.name}.staging-{os.getpid()}"
        self.committed: Path | None = None

    def __enter__(self) -> "Staging":
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir()
        except OSError as exc:
            raise TwinError(f"--out {self.out}: cannot create its staging folder ({exc.strerror or exc})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed is None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, status: str = COMPLETE, **info: Any) -> Path:
        """Write run.json last and rename the staging folder into place; returns where it went."""
        manifest = {"format": MANIFEST_FORMAT, "kind": self.kind, "status": status, "twin_version": __version__,
                    "compiled_modules": compiled_modules(), **self.info, **info, "files": _inventory(self.path)}
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        target = self.out
        if status != COMPLETE and _has_files(target):
            target = target.with_name(target.name + ".incomplete")
        _replace(self.path, target)
        self.committed = target
        return target


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _inventory(folder: Path) -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
            for p in sorted(_files(folder)) if p.name != MANIFEST}


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def _replace(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`; an existing `target` is moved aside first, removed after."""
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        if aside.exists():
            shutil.rmtree(aside)
        target.rename(aside)
    try:
        staging.rename(target)
    except OSError:
        if aside is not None:
            aside.rename(target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's run.json, or None for folders written before manifests existed."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TwinError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise TwinError(f"{path}: expected a twin manifest with a 'files' mapping")
    return data


def verify(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems of `folder` against its manifest: missing or changed files (empty when intact)."""
    problems = []
    for name, entry in manifest["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif not isinstance(entry, dict) or sha256_of(path) != entry.get("sha256"):
            problems.append(f"{name} differs from the one this run wrote (sha256)")
    return problems


def update_manifest(folder: Path, changed: list[str]) -> None:
    """Re-hash `changed` files of a folder that has a manifest (e.g. a re-rendered report.html)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return
    for name in changed:
        path = Path(folder) / name
        manifest["files"][name] = {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
    tmp = Path(folder) / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(Path(folder) / MANIFEST)
