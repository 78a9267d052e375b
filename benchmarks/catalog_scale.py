"""Micro-benchmark: a 10^6-file DFC and a 10^5-file transformation, timed call by call.

Run: /work/venv/bin/python benchmarks/catalog_scale.py [--files N]
Not part of the test suite; it prints one line per timed step and the peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from collections.abc import Callable
from typing import Any

import checkout

checkout.use()

from twin.dirac.catalog import FILE_META, FileCatalog, FileCatalogClient
from twin.dirac.transformation.db import TransformationDB

SITES = ("LaPalma", "Paranal")
PARTICLES = ("gamma", "gamma-diffuse", "proton", "electron")
ZENITHS = (20.0, 40.0, 60.0)
FILES_PER_BLOCK = 1000


def timed(label: str, call: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - start
    size = f"{len(result):>9,d} rows" if isinstance(result, (list, dict)) else ""
    print(f"{label:<62s} {elapsed * 1000:>10.1f} ms {size}")
    return result


def declare_fields(fc: FileCatalog) -> None:
    for name, ftype in (("site", str), ("particle", str), ("thetaP", float), ("data_level", int),
                        ("outputType", str)):
        fc.add_metadata_field(name, ftype)
    fc.add_metadata_field("runNumber", int, FILE_META)
    fc.add_metadata_field("nsb", int, FILE_META)


def populate(fc: FileCatalog, n_files: int) -> None:
    """/ctao/MC/<site>/<particle>/z<zenith>/Data/<block>/run<N>: directory metadata at three levels."""
    run = 0
    tagged: set[str] = set()
    while run < n_files:
        for site in SITES:
            for particle in PARTICLES:
                base = f"/ctao/MC/{site}/{particle}"
                for zenith in ZENITHS:
                    data = f"{base}/z{int(zenith)}/Data"
                    if data not in tagged:
                        tagged.add(data)
                        fc.create_directory(data)
                        fc.set_metadata(base, {"site": site, "particle": particle})
                        fc.set_metadata(f"{base}/z{int(zenith)}", {"thetaP": zenith})
                        fc.set_metadata(data, {"data_level": 0, "outputType": "Data"})
                    block = f"{data}/{run // FILES_PER_BLOCK:06d}"
                    for _ in range(FILES_PER_BLOCK):
                        if run >= n_files:
                            return
                        fc.add_file(f"{block}/run{run:07d}.simtel.zst", 2_000_000_000, "CC-IN2P3-Disk",
                                    {"runNumber": run, "nsb": run % 3})
                        run += 1


def bench_catalog(n_files: int, gc_freeze: bool) -> FileCatalogClient:
    fc = FileCatalog()
    declare_fields(fc)
    timed(f"build catalog ({n_files:,d} files)", lambda: populate(fc, n_files))
    if gc_freeze:
        gc.freeze()
    client = FileCatalogClient(fc)
    queries = {
        "dir only: particle=gamma, thetaP=20": {"particle": "gamma", "thetaP": 20.0},
        "dir only: particle in [gamma, proton], data_level=0": {"particle": ["gamma", "proton"], "data_level": 0},
        "file only: 1000 <= runNumber < 2000 (sorts values once)": {"runNumber": {">=": 1000, "<": 2000}},
        "file only: 1000 <= runNumber < 2000 (again)": {"runNumber": {">=": 1000, "<": 2000}},
        "mixed: site=LaPalma, particle=proton, nsb=1, run>500000": {
            "site": "LaPalma", "particle": "proton", "nsb": 1, "runNumber": {">": n_files // 2}},
        "negative: particle nin [gamma], thetaP!=60": {"particle": {"nin": ["gamma"]}, "thetaP": {"!=": 60.0}},
        "everything: data_level=0": {"data_level": 0},
    }
    for label, query in queries.items():
        timed(f"findFilesByMetadata {label}", lambda q=query: client.findFilesByMetadata(q)["Value"])
    sample = [f"/ctao/MC/LaPalma/gamma/z20/Data/{i:06d}/run{i * FILES_PER_BLOCK:07d}.simtel.zst" for i in range(100)]
    timed("getFileUserMetadata x 1000", lambda: [client.getFileUserMetadata(sample[i % 100]) for i in range(1000)])
    timed("getReplicas 10,000 LFNs", lambda: client.getReplicas(sample * 100)["Value"]["Successful"])
    return client


def bench_transformation(client: FileCatalogClient, n_files: int) -> None:
    lfns = client.findFilesByMetadata({"particle": {"in": list(PARTICLES)}})["Value"][:n_files]
    db = TransformationDB()
    trans_id = db.addTransformation("bench", "", "", "DataReprocessing", "Standard", "Automatic", "")["Value"]
    add = lambda: db.addFilesToTransformation(trans_id, lfns)["Value"]["Successful"]  # noqa: E731
    timed(f"addFilesToTransformation {len(lfns):,d} new", add)
    timed(f"addFilesToTransformation {len(lfns):,d} present", add)
    unused = timed("getTransformationFiles Status in [Unused, ProbInFC]", lambda: db.getTransformationFiles(
        {"TransformationID": trans_id, "Status": ["Unused", "ProbInFC"]})["Value"])
    groups = [[f["LFN"] for f in unused[i:i + 5]] for i in range(0, len(unused), 5)]
    timed(f"addTaskForTransformation x {len(groups):,d} (5 files each)",
          lambda: [db.addTaskForTransformation(trans_id, g, "CC-IN2P3-Disk", now=0.0) for g in groups])
    timed("getCounters TransformationFiles by UsedSE", lambda: db.getCounters(
        "TransformationFiles", ["UsedSE"], {"TransformationID": trans_id})["Value"])
    timed("getTransformationStats", lambda: db.getTransformationStats(trans_id)["Value"])
    timed("getTasksToSubmit 50", lambda: db.getTasksToSubmit(trans_id, 50, now=60.0)["Value"]["JobDictionary"])
    done = [lfn for group in groups[:2000] for lfn in group]
    timed(f"setFileStatusForTransformation Processed x {len(done):,d}",
          lambda: db.setFileStatusForTransformation(trans_id, "Processed", done)["Value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--transformation-files", type=int, default=100_000)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after the build: the cyclic GC stops rescanning 10^6 long-lived objects")
    args = parser.parse_args()
    client = bench_catalog(args.files, args.gc_freeze)
    bench_transformation(client, args.transformation_files)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
