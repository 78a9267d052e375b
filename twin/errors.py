"""User-facing errors: one line naming the file, the key path and what was expected."""

from __future__ import annotations


class TwinError(Exception):
    """An error caused by the user's input; the CLI prints it and exits with code 2."""


class ScenarioError(TwinError):
    def __init__(self, file: str, path: str, message: str, line: int | None = None) -> None:
        self.file, self.path, self.message, self.line = file, path, message, line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


class ScenarioErrors(TwinError):
    """Several independent problems found in one scenario; each prints on its own line."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
