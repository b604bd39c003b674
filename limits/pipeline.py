"""The limits stage: histogram file in, ``shapes/``, ``workspaces/`` and ``limits/`` out.

:func:`fit_signal_shapes` is the shapes step alone (fits, interpolation and its check, plots);
:func:`run_limits` is the whole stage that ``alps limits`` calls. Mass points run as tasks on the
Dask cluster of the processing when a ``distributed.Client`` is given, in sequence otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from alps.config import AnalysisConfig, config_hash
from alps.histio import (
    file_checksum,
    git_revision,
    package_versions,
    read_provenance,
    signal_digest,
)
from limits.grid import scan_masses
from limits.inputs import Spectra
from limits.interpolation import ShapeModel
from limits.io import read_json, read_spectra, write_json
from limits.mass_model import excluded_regions
from limits.mass_points import build_mass_points
from limits.plots import (
    COUPLING_LABEL,
    XSEC_LABEL,
    plot_brazil,
    plot_excess,
    plot_shape_fits,
    plot_shape_parameters,
    plot_significance,
)
from limits.results import LimitsResult, mass_record
from limits.scan import analyse_workspaces, best_fit_curves
from limits.signal_model import build_shape_model
from limits.significance import global_from_toys, gross_vitells
from limits.toys import null_spectrum, scan_toys
from limits.workspace import mass_label

__all__ = ["fit_signal_shapes", "resolve_working_point", "run_limits"]


def resolve_working_point(working_point: float | None, config: AnalysisConfig) -> float | None:
    """The working point: the argument, else ``training.working_point``, else None (no cut)."""
    return working_point if working_point is not None else config.training.working_point


def _bar(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _shape_settings(config: AnalysisConfig) -> str:
    """Hash of the settings the shape fits read (the shapes stage of alps.pipeline is keyed on
    the same ones): not the scan masses, whose change must not refit the shapes."""
    settings = {
        "resolution": config.histograms.resolution.model_dump(mode="json"),
        "window_nsigma": config.limits.window_nsigma,
        "efficiency_window_nsigma": config.limits.efficiency_window_nsigma,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _shape_provenance(path: Path, config: AnalysisConfig) -> dict[str, Any]:
    return {
        "input": {"path": str(path), "sha256": file_checksum(path)},
        "signal_digest": signal_digest(path),
        "shape_settings": _shape_settings(config),
        "config_hash": config_hash(config),
        "config_hash_sections": config_hash(config, "histograms", "systematics", "limits"),
        "versions": package_versions(),
        "git_revision": git_revision(),
    }


def _processing_bookkeeping(path: Path) -> dict[str, Any]:
    """What the processing left out and the luminosity of what it read (processors.bookkeeping):
    the skipped inputs, processed and planned luminosity, MC samples lost, out-of-range counts."""
    record = read_provenance(path)
    keys = ("skipped", "luminosity_pb", "planned_luminosity_pb", "mc_lost", "out_of_range")
    return {key: record.get(key) for key in keys}


def _stored_shapes(
    workdir: Path, path: Path, config: AnalysisConfig, working_point: float | None
) -> ShapeModel | None:
    """The shape model of ``workdir/shapes/shapes.json`` when it was fitted to this histogram
    file with these settings and this working point (the shapes stage of ``alps run``), else
    None: the limits then fit the shapes themselves."""
    try:
        record = read_json(workdir / "shapes" / "shapes.json")
    except (OSError, ValueError):
        return None
    expected = _shape_provenance(path, config)
    stored = record.get("provenance", {})
    same = (
        stored.get("signal_digest") == expected["signal_digest"]
        and stored.get("shape_settings") == expected["shape_settings"]
        and record.get("working_point") == working_point
    )
    return ShapeModel.from_dict(record) if same else None


def fit_signal_shapes(
    histogram_path: str | Path,
    config: AnalysisConfig,
    workdir: str | Path,
    *,
    working_point: float | None = None,
    client: Any | None = None,
    progress: bool = True,
    spectra: Spectra | None = None,
) -> ShapeModel:
    """Fit the signal shape at every simulated mass, interpolate in m_a, check the interpolation
    on held-out masses; write ``shapes/shapes.json`` and ``shapes/*.png`` under ``workdir``."""
    path = Path(histogram_path)
    out = Path(workdir) / "shapes"
    wp = resolve_working_point(working_point, config)
    spectra = read_spectra(path, wp) if spectra is None else spectra
    n = len(spectra.signal_masses())
    with _bar(n, "signal shapes", progress) as bar:
        model = build_shape_model(spectra, config, client=client, progress=bar.update)
    record = model.to_dict()
    record["provenance"] = _shape_provenance(path, config)
    write_json(out / "shapes.json", record)
    plot_shape_parameters(model, out / "parameters.png")
    plot_shape_fits(spectra, model, out / "fits.png")
    return model


def run_limits(
    histogram_path: str | Path,
    config: AnalysisConfig,
    workdir: str | Path,
    *,
    client: Any | None = None,
    working_point: float | None = None,
    progress: bool = True,
) -> LimitsResult:
    """The limits stage (see the module docstring); returns the :class:`LimitsResult` that is
    also written to ``workdir/limits/limits.json``."""
    t0 = time.perf_counter()
    path = Path(histogram_path)
    workdir = Path(workdir)
    lcfg = config.limits
    level = 1.0 - lcfg.confidence_level
    wp = resolve_working_point(working_point, config)
    spectra = read_spectra(path, wp)
    if "data" not in spectra.datasets:
        raise ValueError(f"{path}: no dataset 'data' (the observed pseudo-data) in the histograms")
    t_read = time.perf_counter()
    shape_model = _stored_shapes(workdir, path, config, spectra.working_point)
    if shape_model is None:
        shape_model = fit_signal_shapes(
            path, config, workdir, working_point=wp, client=client, progress=progress,
            spectra=spectra,
        )  # fmt: skip
    t_shapes = time.perf_counter()

    regions = excluded_regions(config)
    masses = [float(m) for m in scan_masses(config)]
    specs, infos, geometries, windows, analysed = [], [], [], [], []
    with _bar(len(masses), "workspaces", progress) as bar:
        points = build_mass_points(
            masses, spectra, shape_model, config, client=client, progress=bar.update
        )
    for point in points:
        specs.append(point.spec)
        infos.append(point.info)
        geometries.append(point.geometry)
        windows.append(point.window_bins)
        analysed.append(point.mass)
        write_json(workdir / "workspaces" / f"{mass_label(point.mass)}.json", point.spec,
                   indent=None)  # fmt: skip
    t_ws = time.perf_counter()

    has_mc = bool(np.any(spectra.background_mc() > 0))
    with _bar(len(specs), "mass points", progress) as bar:
        results = analyse_workspaces(
            specs,
            level=level,
            background_mc=[i.background_mc for i in infos] if has_mc else None,
            client=client,
            progress=bar.update,
        )
    t_scan = time.perf_counter()

    lumi, sqrt_s = spectra.luminosity_pb, spectra.sqrt_s_GeV
    by_mass = {
        mass: mass_record(info, geo, r, lumi, sqrt_s)
        for mass, info, geo, r in zip(analysed, infos, geometries, results)
    }
    # global significance from the scan as run: the masses with a result, in scan order; a
    # new segment starts across an excluded region
    ok = [m for m, r in zip(analysed, results) if r.discovery is not None]
    if not ok:
        why = results[0].status if results else "no mass has a usable window"
        raise RuntimeError(f"{path}: no mass hypothesis could be analysed ({why})")
    z = np.array([by_mass[m]["z"] for m in ok])
    segment = np.cumsum(
        [0] + [int(any(a < lo < b for lo, _ in regions)) for a, b in itertools.pairwise(ok)]
    )
    if lcfg.lee_method == "toys" and lcfg.lee_toys > 0:
        keep = [i for i, r in enumerate(results) if r.discovery is not None]
        toy_specs = [specs[i] for i in keep]
        toy_windows = [windows[i] for i in keep]
        null = null_spectrum(toy_specs, toy_windows, len(spectra.edges) - 1)
        toys = scan_toys(toy_specs, toy_windows, null, lcfg.lee_toys, config.seed, client=client)
        glob = global_from_toys(z, ok, [t[0] for t in toys])
    else:
        glob = gross_vitells(z, ok, segment)
    t_end = time.perf_counter()

    result = LimitsResult.assemble(
        masses=masses,
        by_mass=by_mass,
        global_significance=glob,
        excluded=regions,
        luminosity_fb=spectra.luminosity_total_pb / 1000.0,
        working_point=spectra.working_point,
        confidence_level=lcfg.confidence_level,
        provenance={
            **_shape_provenance(path, config),
            "shapes": str(workdir / "shapes" / "shapes.json"),
            "workspaces": str(workdir / "workspaces"),
            "method": "asymptotic CLs, q~_mu (arXiv:1007.1727); limits agree with pyhf upper_limits",
            "lee_method": glob.method,
            "processing": _processing_bookkeeping(path),
        },
        timings_s={
            "read": t_read - t0,
            "shapes": t_shapes - t_read,
            "workspaces": t_ws - t_shapes,
            "scan": t_scan - t_ws,
            "coupling_and_lee": t_end - t_scan,
        },
    )
    out = workdir / "limits"
    write_json(out / "limits.json", result.to_json_dict())
    plot_brazil(
        masses,
        result.observed_xsec_pb,
        result.expected_xsec_pb,
        out / "xsec.png",
        ylabel=XSEC_LABEL,
        excluded=regions,
    )
    plot_brazil(
        masses,
        result.observed_g,
        result.expected_g,
        out / "coupling.png",
        ylabel=COUPLING_LABEL,
        excluded=regions,
    )
    best = analysed.index(glob.mass_at_max)
    plot_excess(
        spectra.edges,
        spectra.get("data")[0],
        windows[best],
        best_fit_curves(specs[best]),
        glob.mass_at_max,
        glob.z_local_max,
        out / "excess.png",
        scan_range=lcfg.scan_range_GeV,
        excluded=regions,
    )
    plot_significance(
        masses,
        result.local_significance,
        out / "significance.png",
        excluded=regions,
        global_z=glob.z_global,
    )
    return result
