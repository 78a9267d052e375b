"""Regression test of the example plugin with the `twin_regression` fixture (pytest plugin of twin).

    pytest examples/plugins                           # compare with the stored baseline
    pytest examples/plugins --twin-update-baselines   # rewrite it after an intended change

Paths are relative to this file. The fixture fails the test, with the diff table, when a key
metric (tasks created, files processed, jobs done/failed, finish time, wasted CPU) regresses.
"""


def test_by_run_chunk_does_not_regress(twin_regression):
    result = twin_regression(
        "../../tests/data/minimal.yaml",
        plugin="by_run_chunk.py:RunChunkPlugin",
        steps=["test/Processing"],
        baseline="baselines/minimal-ByRunChunk.json",
    )
    assert result.ok
