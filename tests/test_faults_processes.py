"""Fault suite, processes (#14, #19 "what must keep holding"): a Dask worker killed with SIGKILL
while chunks are in flight is retried and the histograms are bit-identical; one or two workers
give bit-identical histograms, another chunk size the same within 1e-12; model and histogram
files that would run code when unpickled are refused."""

from __future__ import annotations

import json
import os
import pickle
import signal
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_faults_files import tiny_config

from alps.histio import read_histograms
from processors.run import run_processing
from simulation.production import generate_samples

NAMES = ("mgg", "cutflow", "generated", "kinfit_chi2")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("workers")
    generate_samples(tiny_config(), workdir, progress=False)
    return workdir


def _process(workdir: Path, out: str, chunk_size: int, client: object = None) -> dict:
    """Histograms of ``workdir``'s ntuples, written under ``workdir/<out>``."""
    target = workdir.parent / out
    target.mkdir(exist_ok=True)
    if not (target / "ntuples").exists():
        (target / "ntuples").symlink_to(workdir / "ntuples")
    result = run_processing(
        tiny_config(chunk_size=chunk_size), target, client=client, progress=False,
        write_skims=False,
    )  # fmt: skip
    return read_histograms(result.histogram_file)


def _by_dataset(histograms: dict, rtol: float = 0.0) -> dict[tuple[str, str], np.ndarray]:
    """(histogram, dataset) -> values and variances (category order is the fill order, which
    depends on which chunk finished first; the contents must not)."""
    table = {}
    for name in NAMES:
        h = histograms[name]
        for dataset in h.axes["dataset"]:
            view = h[{"dataset": dataset}]
            table[(name, dataset)] = np.stack([view.values(flow=True), view.variances(flow=True)])
    return table


def _assert_identical(a: dict, b: dict, rtol: float = 0.0) -> None:
    left, right = _by_dataset(a), _by_dataset(b)
    assert left.keys() == right.keys()
    for key in left:
        if rtol:
            np.testing.assert_allclose(left[key], right[key], rtol=rtol, atol=0, err_msg=str(key))
        else:
            np.testing.assert_array_equal(left[key], right[key], err_msg=str(key))


def _cluster(n_workers: int, processes: bool = False):  # type: ignore[no-untyped-def]
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=":0"
    )


def test_one_or_two_workers_give_bit_identical_histograms(production: Path) -> None:
    from distributed import Client

    with _cluster(1) as one, Client(one) as client:
        single = _process(production, "one", 700, client)
    with _cluster(2) as two, Client(two) as client:
        double = _process(production, "two", 700, client)
    _assert_identical(single, double)
    # without Dask the chunks are summed in another order: the same to the last bits or so
    _assert_identical(single, _process(production, "local", 700), rtol=1e-12)


def test_chunk_size_changes_results_by_at_most_1e_12(production: Path) -> None:
    small, large = _process(production, "c400", 400), _process(production, "c5000", 5000)
    _assert_identical(small, large, rtol=1e-12)


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_is_retried_with_identical_histograms(production: Path) -> None:
    """SIGKILL the worker process that is running a chunk: its nanny starts another, the
    executor retries the lost chunks, and the histograms equal an undisturbed run's."""
    from distributed import Client

    with _cluster(2) as undisturbed, Client(undisturbed) as client:
        reference = _process(production, "undisturbed", 700, client)
    with _cluster(2, processes=True) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_a_busy_worker() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                # the chunk tasks are keyed after the processor class
                busy = [w for w, tasks in client.processing().items() if any("ALPProcessor" in str(t) for t in tasks)]  # fmt: skip
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(pids[busy[0]])
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        disturbed = _process(production, "killed", 700, client)
        killer.join()
    assert killed, "no worker was caught running a chunk"
    _assert_identical(reference, disturbed)


def test_a_model_file_that_runs_code_is_refused(tmp_path: Path) -> None:
    """A ``punzi.pt`` that unpickles into a shell command, with a matching checksum in
    ``punzi.json``: torch's weights-only loader refuses it and the command never runs."""
    import torch

    from models.io import PUNZI_FORMAT, load_punzi

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    pt = tmp_path / "punzi.pt"
    torch.save({"weights": Payload()}, pt)
    from alps.histio import file_checksum

    meta = {"format": PUNZI_FORMAT, "weights_file": "punzi.pt", "weights_sha256": file_checksum(pt)}
    (tmp_path / "punzi.json").write_text(json.dumps(meta))
    with pytest.raises(pickle.UnpicklingError, match=r"Weights only load failed"):
        load_punzi(tmp_path)
    assert not marker.exists()


def test_a_histogram_file_with_a_pickled_array_is_refused(production: Path, tmp_path: Path) -> None:
    """Histogram files are read with ``allow_pickle=False``: an object array planted in one
    (a pickle that would run a command) is an error, and the command never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    source = _process(production, "plain", 5000)
    assert source  # the histograms exist
    clean = production.parent / "plain" / "histograms" / "mgg.hist.zip"
    evil = tmp_path / "mgg.hist.zip"
    payload = tmp_path / "payload.npy"
    np.save(payload, np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "cutflow_storage_values.npy":
                data = payload.read_bytes()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="allow_pickle"):
        read_histograms(evil)
    assert not marker.exists()
