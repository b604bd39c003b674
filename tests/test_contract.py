"""The ground floor: sample names, the variation table and its implementations, the typed
manifest (errors name the field), and map_tasks (results in task order on Dask too)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from alps.contract import (
    VARIATIONS,
    Manifest,
    ManifestError,
    is_signal,
    signal_mass,
    signal_sample,
    variation_names,
)
from alps.tasks import map_tasks
from processors.variations import ENERGY_SHIFTS, EVENT_WEIGHTS

MANIFEST = {
    "run_slice": "2018",
    "luminosity_pb": {"2018": 3.0},
    "blocks": {
        "e0003_r1": {"period": "2018", "luminosity_pb": 1.0, "sqrt_s_GeV": 10.57},
        "e0003_r2": {"period": "2018", "luminosity_pb": 2.0, "sqrt_s_GeV": 10.58},
    },
    "files": [
        {"path": "ggg/a.root", "sample": "ggg", "period": "2018", "block": "e0003_r1",
         "events": 7, "luminosity_pb": 1.0, "skipped": False},
        {"path": "alp_m175/b.root", "sample": "alp_m175", "period": "2018", "block": "e0003_r2",
         "events": 5, "luminosity_pb": 2.0, "skipped": False},
    ],
}  # fmt: skip


@pytest.mark.parametrize("mass", [0.175, 1.0, 2.5, 10.2])
def test_signal_names_round_trip(mass: float) -> None:
    name = signal_sample(mass)
    assert is_signal(name)
    assert signal_mass(name) == pytest.approx(mass, abs=5e-4)


@pytest.mark.parametrize("name", ["data", "ggg", "alp_m", "alp_mx", "alp_m175_old", "xalp_m175"])
def test_other_names_are_no_signal(name: str) -> None:
    assert signal_mass(name) is None and not is_signal(name)


def test_every_variation_row_has_its_implementation() -> None:
    names = [v.name for v in VARIATIONS]
    assert len(set(names)) == len(names) and names[0] == "nominal"
    for v in VARIATIONS[1:]:
        table = ENERGY_SHIFTS if v.acts_on == "energy" else EVENT_WEIGHTS
        assert v.systematic in table, v
        assert v.name == f"{v.systematic}_{'up' if v.direction > 0 else 'down'}"
    assert variation_names(is_data=True) == ("nominal",)
    assert not any(n.startswith("lumi") for n in variation_names())


def test_manifest_gives_luminosity_weighted_sqrt_s(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(MANIFEST))
    manifest = Manifest.read(path)
    assert manifest.events == 12
    assert manifest.sqrt_s_GeV() == {"2018": pytest.approx((10.57 + 2 * 10.58) / 3, rel=1e-15)}
    assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_manifest_errors_name_the_field(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(MANIFEST))
    del broken["blocks"]["e0003_r2"]["sqrt_s_GeV"]
    with pytest.raises(ManifestError, match=r"blocks\.e0003_r2\.sqrt_s_GeV is missing"):
        Manifest.from_dict(broken, source="m.json")
    broken = json.loads(json.dumps(MANIFEST))
    broken["files"][1]["block"] = "nowhere"
    with pytest.raises(ManifestError, match="nowhere"):
        Manifest.from_dict(broken)
    broken = json.loads(json.dumps(MANIFEST))
    broken["files"][0]["events"] = "many"
    with pytest.raises(ManifestError, match="malformed"):
        Manifest.from_dict(broken)
    with pytest.raises(ManifestError, match="alps generate"):
        Manifest.read(tmp_path / "absent.json")


def _slow_square(x: int, delay: float) -> int:
    time.sleep(delay * (5 - x))  # the first tasks finish last
    return x * x


def test_map_tasks_keeps_task_order_on_dask() -> None:
    from distributed import Client, LocalCluster

    ticks: list[int] = []
    tasks = [(x,) for x in range(5)]
    expected = [x * x for x in range(5)]
    assert map_tasks(_slow_square, tasks, shared={"delay": 0.0}) == expected
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        got = map_tasks(
            _slow_square, tasks, client=client, shared={"delay": 0.05}, progress=ticks.append
        )
    assert got == expected
    assert ticks == [1] * 5
