"""Make a benchmark measure the checkout it lives in, not whichever `twin` is installed.

`python benchmarks/x.py` puts benchmarks/ first on sys.path, so `import twin` finds the installed
package, which for an editable install is the checkout it was installed from: an A/B pair run from two
checkouts with one environment would time the same code twice. `use()` puts this checkout's root
first, for this process and (through PYTHONPATH) for the processes it starts (harness subprocesses,
dask workers). Imported by every benchmark before it imports twin.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use() -> Path:
    """This checkout's root, first on sys.path and on PYTHONPATH; returns it."""
    root = str(ROOT)
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if paths[:1] != [root]:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *(p for p in paths if p)])
    return ROOT
