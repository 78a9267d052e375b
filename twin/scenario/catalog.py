"""The shipped scenarios and the question each one answers (`twin scenarios`).

The question is the scenario file's `# Question it answers: ...` header comment when it has one
(continued on the following comment lines up to the question mark), else its `description`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from twin.errors import TwinError

_QUESTION = re.compile(r"^#\s*(?:What-if:\s*)?Question it answers:\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class ScenarioEntry:
    path: Path
    name: str
    question: str


def default_folder() -> Path:
    """./scenarios when run from a checkout's root, else the one beside the installed package."""
    here = Path("scenarios")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "scenarios"


def list_scenarios(folder: Path | None = None) -> list[ScenarioEntry]:
    folder = Path(folder) if folder else default_folder()
    if not folder.is_dir():
        raise TwinError(f"--dir {folder}: expected a folder of scenario YAML files")
    return [_entry(path) for path in sorted(folder.glob("*.yaml"))]


def _entry(path: Path) -> ScenarioEntry:
    from twin.scenario.loader import resolve

    text = path.read_text(encoding="utf-8")
    try:
        data = resolve(path)
    except TwinError as exc:
        return ScenarioEntry(path, path.stem, f"(does not load: {str(exc).splitlines()[0]})")
    question = _header_question(text) or str(data.get("description") or "").strip() or "(no description)"
    return ScenarioEntry(path, str(data.get("name", path.stem)), " ".join(question.split()))


def _header_question(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _QUESTION.match(line)
        if match:
            parts = [match.group(1)]
            for more in lines[i + 1:]:
                if parts[-1].rstrip().endswith("?") or not more.startswith("#"):
                    break
                parts.append(more.lstrip("#").strip())
            return " ".join(parts)
    return ""
