"""An example CTADIRAC-style TransformationAgent plugin, written as one would for DIRAC.

`ByRunChunk` groups a transformation's input files by the run number their job wrote
(`runNumber` file metadata), in run order, into tasks of GroupSize files that share a storage
element, so each task processes consecutive runs. A last partial chunk is only released when
the transformation is flushed, as DIRAC's Standard plugin does.

Deploying it in DIRAC means subclassing DIRAC's `TransformationPlugin` in your extension and
pointing the agent's PluginLocation at it; in the twin the same class subclasses
`twin.dirac.transformation.plugins.TransformationPlugin` and is named in the scenario
(`plugin: ByRunChunk`, `plugin_class: "examples/plugins/by_run_chunk.py:RunChunkPlugin"`) or
tested with:

    twin regress tests/data/minimal.yaml --plugin examples/plugins/by_run_chunk.py:RunChunkPlugin \
        --step test/Processing --baseline examples/plugins/baselines/minimal-ByRunChunk.json
"""

from __future__ import annotations

from typing import Any

from twin.dirac.returnvalues import S_ERROR, S_OK
from twin.dirac.transformation.plugin_utils import breakListIntoChunks, getFileGroups
from twin.dirac.transformation.plugins import TransformationPlugin


class RunChunkPlugin(TransformationPlugin):
    """DIRAC's TransformationPlugin plus `_ByRunChunk`."""

    def _ByRunChunk(self) -> dict[str, Any]:
        groupSize = int(self.util.getPluginParam("GroupSize", 10))
        flush = self.params.get("Status") == "Flush"
        runs = {}
        for lfn in self.data:
            res = self.util.fc.getFileUserMetadata(lfn)
            if not res["OK"]:
                return S_ERROR(f"Failed to get metadata for {lfn}: {res['Message']}")
            runs[lfn] = res["Value"].get("runNumber", 0)
        tasks = []
        # one pass per exact replica set ("SE1,SE2"), so every file of a task is at the task's SEs
        for ses, lfns in getFileGroups(self.data, groupSE=True).items():
            ordered = sorted(lfns, key=lambda lfn: (runs[lfn], lfn))
            for chunk in breakListIntoChunks(ordered, groupSize):
                if flush or len(chunk) >= groupSize:
                    tasks.append((ses, chunk))
        return S_OK(tasks)
