"""twin: a discrete-event digital twin of the CTAO DIRAC/CTADIRAC production system."""

import os as _os
import sys as _sys

from twin import _native

__version__ = "0.1.0"


def _refuse_stale_build() -> None:
    """Compiled mode (`python tools/native.py build`): extensions shadow their sources, so a tree whose
    extensions no longer match the sources they were built from must not run. The `twin` command says
    so in one line (exit 2); an importer gets an ImportError."""
    try:
        problem = _native.stale()
        message = None if problem is None else (
            f"twin: compiled modules are stale: {problem}; rebuild with `python tools/native.py build` "
            "or remove them with `python tools/native.py clean`")
    except ImportError as exc:
        message = str(exc)
    if message is None:
        return
    if _os.path.basename(_sys.argv[0]) in ("twin", "-m"):
        _sys.stderr.write(message + "\n")
        raise SystemExit(2)
    raise ImportError(message)


_refuse_stale_build()
