"""The histogram contract, projected to the arrays the limits need.

The processor writes ``hist.Hist`` objects with axes dataset, period, variation, truth, mgg and
(in ``mgg_score``) score (design.md "Histograms are the contract"). :func:`project_histograms`
sums over run periods, applies the working point (score >= wp, wp one of the score edges) and
returns a :class:`Spectra`: per dataset, variation and truth class, the summed weights and
squared weights per M_gamma_gamma bin, together with the generated signal weights and the
luminosity, beam energies and reference coupling from the file's provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np
import numpy.typing as npt

from alps.contract import TRUTH_CLASSES, signal_mass

__all__ = [
    "TRUTH_CLASSES",
    "Spectra",
    "project_histograms",
    "signal_dataset_mass",
]

FloatArray = npt.NDArray[np.float64]

#: the one parser of signal dataset names (``alp_m<MeV>``), re-exported under its old name
signal_dataset_mass = signal_mass


@dataclass(frozen=True, eq=False)
class Spectra:
    """Histogram contents after the working point, summed over run periods.

    ``values`` and ``variances`` are (datasets, variations, truth, mgg bins); ``generated`` maps
    each dataset to its summed generated weight; luminosities in pb^-1, energies in GeV,
    ``coupling`` the reference g_agg (GeV^-1) the signal MC weights were made with.
    """

    edges: FloatArray
    datasets: tuple[str, ...]
    variations: tuple[str, ...]
    values: FloatArray
    variances: FloatArray
    generated: dict[str, float]
    luminosity_pb: dict[str, float]
    sqrt_s_GeV: dict[str, float]
    coupling: float
    working_point: float | None

    @property
    def luminosity_total_pb(self) -> float:
        return float(sum(self.luminosity_pb.values()))

    def signal_masses(self) -> dict[float, str]:
        """Simulated ALP masses (GeV, sorted) and their dataset names."""
        found = {signal_dataset_mass(d): d for d in self.datasets}
        return {m: found[m] for m in sorted(k for k in found if k is not None)}

    def get(
        self, dataset: str, variation: str = "nominal", truth: str | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """(summed weights, summed squared weights) per bin; ``truth`` None sums both classes."""
        d = self.datasets.index(dataset)
        v = self.variations.index(variation)
        if truth is None:
            return self.values[d, v].sum(axis=0), self.variances[d, v].sum(axis=0)
        t = TRUTH_CLASSES.index(truth)
        return self.values[d, v, t].copy(), self.variances[d, v, t].copy()

    def background_mc(self) -> FloatArray:
        """Summed weights per bin of every MC background (datasets other than ``data`` and the
        ``alp_m<MeV>`` signals), nominal variation, both truth classes."""
        names = [d for d in self.datasets if d != "data" and signal_dataset_mass(d) is None]
        total = np.zeros(len(self.edges) - 1)
        for name in names:
            total += self.get(name)[0]
        return total

    def has_variation(self, dataset: str, variation: str) -> bool:
        """True when ``variation`` exists and differs from nominal for ``dataset``."""
        if variation not in self.variations:
            return False
        nom = self.get(dataset)[0]
        var = self.get(dataset, variation)[0]
        return bool(var.sum() > 0 and not np.allclose(var, nom, rtol=1e-12, atol=0.0))


def _axis_index(h: hist.Hist, name: str) -> int:
    names = [ax.name for ax in h.axes]
    if name not in names:
        raise KeyError(f"histogram has no axis {name!r}; axes: {names}")
    return names.index(name)


def _score_start(h: hist.Hist, working_point: float | None) -> int | None:
    if "score" not in [ax.name for ax in h.axes]:
        if working_point not in (None, 0.0):
            raise ValueError("a working point was given but the histogram has no score axis")
        return None
    edges = np.asarray(h.axes["score"].edges)
    if working_point is None:
        return 0
    hit = np.flatnonzero(np.isclose(edges, working_point, rtol=0, atol=1e-9))
    if len(hit) == 0 or hit[0] >= len(edges) - 1:
        raise ValueError(
            f"working point {working_point} is not one of the score edges {edges.tolist()[:-1]}"
        )
    return int(hit[0])


def project_histograms(
    histograms: Mapping[str, hist.Hist],
    provenance: Mapping[str, Any],
    *,
    working_point: float | None = None,
    name: str = "mgg",
) -> Spectra:
    """Project the contract histograms (see the module docstring) to :class:`Spectra`."""
    h = histograms[name]
    view: Any = h.view(flow=False)
    order = [_axis_index(h, a) for a in ("dataset", "period", "variation", "truth", "mgg")]
    start = _score_start(h, working_point)
    values = np.asarray(view["value"], dtype=np.float64)
    variances = np.asarray(view["variance"], dtype=np.float64)
    if start is not None:
        s_ax = _axis_index(h, "score")
        values = np.take(values, np.arange(start, values.shape[s_ax]), axis=s_ax).sum(axis=s_ax)
        variances = np.take(variances, np.arange(start, variances.shape[s_ax]), axis=s_ax).sum(
            axis=s_ax
        )
        order = [i if i < s_ax else i - 1 for i in order]
    values = np.transpose(values, order).sum(axis=1)  # sum over periods
    variances = np.transpose(variances, order).sum(axis=1)
    truth = list(h.axes["truth"])
    t_idx = [truth.index(t) for t in TRUTH_CLASSES]
    values = values[:, :, t_idx]
    variances = variances[:, :, t_idx]

    generated: dict[str, float] = {}
    if "generated" in histograms:
        g = histograms["generated"]
        g_view: Any = g.view(flow=False)
        gv = np.asarray(g_view["value"], dtype=np.float64)
        d_ax = _axis_index(g, "dataset")
        gv = np.moveaxis(gv, d_ax, 0).reshape(gv.shape[d_ax], -1).sum(axis=1)
        generated = {str(d): float(v) for d, v in zip(g.axes["dataset"], gv)}
    lumi = {str(k): float(v) for k, v in provenance.get("luminosity_pb", {}).items()}
    sqrt_s = provenance.get("sqrt_s_GeV", {})
    if not isinstance(sqrt_s, Mapping):
        sqrt_s = dict.fromkeys(lumi, float(sqrt_s))
    return Spectra(
        edges=np.asarray(h.axes["mgg"].edges, dtype=np.float64),
        datasets=tuple(str(d) for d in h.axes["dataset"]),
        variations=tuple(str(v) for v in h.axes["variation"]),
        values=np.ascontiguousarray(values),
        variances=np.ascontiguousarray(variances),
        generated=generated,
        luminosity_pb=lumi,
        sqrt_s_GeV={str(k): float(v) for k, v in sqrt_s.items()},
        coupling=float(provenance.get("signal_coupling_GeV", float("nan"))),
        working_point=None if start is None else float(np.asarray(h.axes["score"].edges)[start]),
    )
