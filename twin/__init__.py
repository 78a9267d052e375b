"""twin: a discrete-event digital twin of the CTAO DIRAC/CTADIRAC production system."""

import os as _os
import sys as _sys

from twin import _native

__version__ = "0.1.0"

# Compiled mode (`python tools/native.py build`): extensions shadow their sources, so a tree whose
# extensions no longer match the checkout must not run. The `twin` command says so in one line.
_stale = _native.stale()
if _stale is not None:
    _message = f"twin: compiled modules are stale: {_stale}; rebuild with `python tools/native.py build` or remove them with `python tools/native.py clean`"
    if _os.path.basename(_sys.argv[0]) in ("twin", "-m"):
        _sys.stderr.write(_message + "\n")
        raise SystemExit(2)
    raise ImportError(_message)
