"""Cost of one TransformationAgent plugin call: native plugins vs the genuine DIRAC/CTADIRAC classes.

One "call" is what the agent does per transformation per cycle: build the plugin object, setParameters,
setInputData, setTransformationFiles, run. Inputs: ``--files`` Unused files (default 1000) at 6 SEs
(2 tape) over 4 sites, 1-3 replicas each, sizes 0.05-1.5 GB, telescope metadata, calibration files.

Columns: native (twin.dirac.transformation.plugins), genuine (twin.dirac.host with the simulated
``resources``/``operations``, as the twin runs it), and for the DIRAC plugins genuine-cs (DIRAC's own
DMSHelpers/StorageElement/Operations reading the in-memory configuration).

    /work/venv-dirac/bin/python benchmarks/plugin_cost.py [--files 1000] [--min-time 1.0] [--output PATH]

Needs the [dirac] extra (.ci/install-dirac-extra). Writes benchmarks/results/plugin_cost.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import checkout

checkout.use()

from twin.dirac.transformation.fakes import (
    FakeFileCatalog,
    FakeOperations,
    FakeResources,
    FakeTransformationClient,
)
from twin.dirac.transformation.plugins import CTATransformationPlugin, TransformationPlugin

GB = 1000 * 1000 * 1000
TRANS_ID = 7
SITE_SES = {
    "CTAO.CERN.ch": ["CTAO-CERN-Disk", "CTAO-CERN-Tape"],
    "CTAO.DESY.de": ["CTAO-DESY-Disk"],
    "CTAO.PIC.es": ["CTAO-PIC-Disk", "CTAO-PIC-Tape"],
    "CTAO.CSCS.ch": ["CTAO-CSCS-Disk"],
}
TAPE = {"CTAO-CERN-Tape", "CTAO-PIC-Tape"}
SES = [se for ses in SITE_SES.values() for se in ses]
CALIB = ["pedestal", "flatfield"]

# plugin -> (source, params)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "Standard": ("dirac", {"Status": "Active", "GroupSize": 10}),
    "BySize": ("dirac", {"Status": "Active", "GroupSize": 5}),
    "Broadcast": ("dirac", {"Status": "Active", "GroupSize": 10, "TargetSE": str(SES), "Destinations": 3}),
    "ByShare": ("dirac", {"Status": "Active", "GroupSize": 10}),
    "GroupAll": ("ctadirac", {"Status": "Active"}),
    "MergeByTelescope": ("ctadirac", {"Status": "Active"}),
    "ByTelescopeChunk": (
        "ctadirac",
        {"Status": "Active", "CalibpipeRelease": "v0.3.1", "CalibDataType": str(CALIB)},
    ),
}


def build_inputs(nFiles: int, seed: int = 1) -> dict[str, Any]:
    rnd = random.Random(seed)
    data: dict[str, list[str]] = {}
    fc = FakeFileCatalog()
    for i in range(nFiles):
        lfn = f"/vo.cta.in2p3.fr/MC/PROD7/Paranal/proton/run{i:06d}.simtel.zst"
        replicas = rnd.sample(SES, rnd.choice([1, 1, 2, 3]))
        data[lfn] = replicas
        meta = {"instance__obs_id": 2000 + i % 5, "instance__ae_id": 1 + i % 4, "instance__chunk_id": (i // 20) % 10}
        fc.addFile(lfn, size=rnd.randint(GB // 20, 3 * GB // 2), replicas=replicas, metadata=meta)
    for obs in range(2000, 2005):
        for ae in range(1, 5):
            for t in CALIB:
                fc.addFile(
                    f"/vo.cta.in2p3.fr/DL1/Monitoring/obs{obs}/ae{ae:03d}/{t}.h5",
                    size=10**6,
                    replicas=["CTAO-CERN-Disk"],
                    metadata={
                        "curation__release": "v0.3.1",
                        "data__level": "DL1",
                        "data__division": "Monitoring",
                        "data__association": "Telescope",
                        "data__type": t,
                        "instance__obs_id": obs,
                        "instance__ae_id": ae,
                    },
                )
    tc = FakeTransformationClient(files={TRANS_ID: list(data)})
    history = [f"/vo.cta.in2p3.fr/MC/PROD7/done/run{i:06d}.zst" for i in range(200)]
    tc.addFilesToTransformation(TRANS_ID, history)
    for i, lfn in enumerate(history):
        tc.addTaskForTransformation(TRANS_ID, [lfn], SES[i % len(SES)])
    files = tc.getTransformationFiles({"TransformationID": TRANS_ID, "Status": "Unused"})["Value"]
    resources = FakeResources(
        site_ses=SITE_SES,
        tape_ses=TAPE,
        cpu_shares={"CTAO.CERN.ch": 40, "CTAO.DESY.de": 20, "CTAO.PIC.es": 30, "CTAO.CSCS.ch": 10},
    )
    operations = FakeOperations({"TransformationPlugins/MaxFilesPerTask": "50"})
    return {"data": data, "fc": fc, "tc": tc, "files": files, "resources": resources, "operations": operations}


def measure(call: Callable[[], Any], minTime: float, repeats: int = 3) -> tuple[float, int]:
    """Best-of-``repeats`` seconds per call, each repeat running for at least ``minTime`` / repeats."""
    call()  # warm caches (imports, DIRAC configuration, CS objects)
    best = float("inf")
    total = 0
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            call()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= minTime / repeats:
                break
        total += n
        best = min(best, elapsed / n)
    return best, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of calls per measurement")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "plugin_cost.md")
    parser.add_argument("--plugins", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)

    from twin.dirac.host import GenuinePluginHost, Topology

    t0 = time.perf_counter()
    inp = build_inputs(args.files)
    host = GenuinePluginHost(Topology.from_resources(inp["resources"], inp["operations"]), log_level="FATAL")
    hostStart = time.perf_counter() - t0

    def cycle(make: Callable[[str, str], Any], plugin: str, source: str, params: dict[str, Any]) -> Callable[[], Any]:
        def call() -> Any:
            obj = make(plugin, source)
            obj.setParameters({"TransformationID": TRANS_ID, **params})
            obj.setInputData(inp["data"])
            obj.setTransformationFiles(inp["files"])
            result = obj.run()
            assert result["OK"], result
            return result

        return call

    def native(plugin: str, source: str) -> Any:
        cls = CTATransformationPlugin if source == "ctadirac" else TransformationPlugin
        return cls(plugin, inp["tc"], None, inp["fc"], resources=inp["resources"], operations=inp["operations"], rng=random.Random(3))

    def genuine(plugin: str, source: str) -> Any:
        return host.make_plugin(plugin, source, inp["tc"], inp["fc"], inp["resources"], inp["operations"], rng=random.Random(3))

    def genuineCS(plugin: str, source: str) -> Any:
        return host.make_plugin(plugin, source, inp["tc"], inp["fc"], None, None, rng=random.Random(3))

    rows = []
    for plugin in args.plugins:
        source, params = CASES[plugin]
        results = {}
        outputs = {}
        for label, make in (("native", native), ("genuine", genuine), ("genuine-cs", genuineCS)):
            if label == "genuine-cs" and source != "dirac":
                continue
            call = cycle(make, plugin, source, params)
            outputs[label] = call()["Value"]
            results[label] = measure(call, args.min_time)
        same = all(out == outputs["native"] for out in outputs.values())
        nTasks = len(outputs["native"])
        rows.append((plugin, source, nTasks, results, same))
        ratio = results["genuine"][0] / results["native"][0]
        print(
            f"{plugin:17s} tasks={nTasks:4d}  native {1 / results['native'][0]:9.1f}/s  "
            f"genuine {1 / results['genuine'][0]:9.1f}/s  x{ratio:5.2f}  same={same}",
            flush=True,
        )

    write_markdown(args, rows, hostStart)
    print(f"written {args.output}")
    return 0


def machine_info() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from twin.dirac.host import m2crypto_is_stubbed

    versions = []
    for dist in ("DIRAC", "DIRACCommon", "CTADIRAC", "diracx-client", "M2Crypto"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} not installed")
    return [
        f"- machine: {platform.node() or 'n/a'}, {platform.system()} {platform.release()}, {platform.machine()}",
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (benchmark is single-threaded)",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- {', '.join(versions)}; M2Crypto {'import stub' if m2crypto_is_stubbed() else 'real'}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    ]


def write_markdown(args: argparse.Namespace, rows: list[tuple], hostStart: float) -> None:
    lines = [
        "# Plugin call cost: native vs genuine DIRAC/CTADIRAC",
        "",
        f"Generated by `benchmarks/plugin_cost.py --files {args.files} --min-time {args.min_time}`.",
        "",
        f"One call = build the plugin object + setParameters + setInputData + setTransformationFiles + run, "
        f"on {args.files} Unused files at 6 SEs (2 tape) over 4 sites with 1-3 replicas, as the agent does per "
        "transformation per cycle. Best of 3 timed runs. *genuine* = DIRAC's classes through `twin.dirac.host` "
        "with the simulated resources/operations (how the twin runs them); *genuine-cs* = DIRAC's own "
        "DMSHelpers/StorageElement/Operations on the in-memory configuration. *same* = identical task list.",
        "",
        "| plugin | source | tasks | native calls/s | genuine calls/s | genuine-cs calls/s | genuine / native time | same |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for plugin, source, nTasks, results, same in rows:
        nat, gen = results["native"][0], results["genuine"][0]
        cs = results.get("genuine-cs")
        lines.append(
            f"| {plugin} | {source} | {nTasks} | {1 / nat:,.1f} | {1 / gen:,.1f} | "
            f"{(f'{1 / cs[0]:,.1f}' if cs else '-')} | {gen / nat:.2f}x | {'yes' if same else 'NO'} |"
        )
    lines += [
        "",
        f"One-off: importing DIRAC/CTADIRAC and building the host took {hostStart:.2f} s "
        "(input generation included).",
        "",
        "Machine:",
        "",
        *machine_info(),
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
