"""Synthetic histograms that follow the histogram contract, for tests, benchmarks and studies.

Not a physics simulation: candidates are drawn from simple closed-form distributions (a DSCB peak
with known parameters, a rising combinatorial spectrum, a falling background, Gaussian meson
peaks), so that the limits code can be checked against known truth (injected signal, efficiency,
shape) without the event-processing chain. Every draw takes an explicit seed. Histogram axes,
names and weights follow design.md "Histograms are the contract" exactly as the processor fills
them; the file can be written with ``alps.histio.write_histograms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np
import numpy.typing as npt
from numba_stats import crystalball_ex

from alps.config import AnalysisConfig, HistogramConfig
from alps.contract import signal_sample, variation_names
from limits.shapes import DEFAULT_TAIL_N
from simulation.physics import MESON_MASSES, sigma_alp

__all__ = [
    "VARIATIONS",
    "SyntheticTruth",
    "make_histograms",
    "mgg_edges",
    "synthetic_efficiency",
]

FloatArray = npt.NDArray[np.float64]

#: the variation categories, as the processor fills them for MC
VARIATIONS = variation_names()

HIST_MAX = 10.6
#: true DSCB tail parameters of the synthetic signal
TRUE_BETA = (1.2, 2.0)
#: relative trigger-efficiency uncertainty of the synthetic variations
TRIGGER_UNC = 0.01


@dataclass(frozen=True)
class SyntheticTruth:
    """What the synthetic sample was made with (for checks)."""

    signal_masses: tuple[float, ...]
    coupling: float
    luminosity_pb: dict[str, float]
    sqrt_s: float
    background_per_pb: float
    injection: tuple[float, float] | Sequence[tuple[float, float]] | None
    injected_events: int


def mgg_edges(hcfg: HistogramConfig) -> FloatArray:
    """M_gamma_gamma edges (GeV) whose widths are ``bin_width_sigma`` x sigma_m(lower edge)."""
    edges = [hcfg.mass_min_GeV]
    while edges[-1] < hcfg.mass_max_GeV:
        edges.append(edges[-1] + hcfg.bin_width_sigma * float(hcfg.resolution.sigma(edges[-1])))
    edges[-1] = hcfg.mass_max_GeV
    if edges[-1] - edges[-2] < 0.25 * (edges[-2] - edges[-3]):
        edges.pop(-2)
    return np.asarray(edges)


def synthetic_efficiency(mass: npt.ArrayLike) -> FloatArray:
    """Probability that a signal event gives a reconstructed, truth-matched candidate (before the
    score cut): a low-mass turn-on (merged photons) and a slow decrease at high mass."""
    m = np.asarray(mass, dtype=np.float64)
    return np.asarray(0.45 * (1.0 - np.exp(-m / 0.2)) * (1.0 - 0.03 * m))


def _background_density(m: FloatArray) -> FloatArray:
    return np.asarray(np.exp(-m / 2.0) + 0.08)


def _sample_density(rng: np.random.Generator, n: int, lo: float, hi: float) -> FloatArray:
    grid = np.linspace(lo, hi, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(_background_density(0.5 * (grid[1:] + grid[:-1])))])
    return np.asarray(np.interp(rng.random(n), cdf / cdf[-1], grid))


class _Filler:
    """Accumulates candidates into the dense (dataset, period, variation, truth, mgg, score)
    arrays of summed weights and squared weights."""

    def __init__(self, n_d: int, n_p: int, edges: FloatArray, score_edges: FloatArray):
        self.edges, self.score_edges = edges, score_edges
        shape = (n_d, n_p, len(VARIATIONS), 2, len(edges) - 1, len(score_edges) - 1)
        self.value = np.zeros(shape)
        self.variance = np.zeros(shape)

    def fill(
        self,
        d: int,
        p: int,
        v: int,
        truth: FloatArray,
        mgg: FloatArray,
        score: FloatArray,
        w: FloatArray,
    ) -> None:
        i_m = np.searchsorted(self.edges, mgg, side="right") - 1
        i_s = np.clip(
            np.searchsorted(self.score_edges, score, side="right") - 1, 0, len(self.score_edges) - 2
        )
        ok = (i_m >= 0) & (i_m < len(self.edges) - 1)
        n_m, n_s = len(self.edges) - 1, len(self.score_edges) - 1
        flat = (truth[ok] * n_m + i_m[ok]) * n_s + i_s[ok]
        size = 2 * n_m * n_s
        w = np.broadcast_to(w, mgg.shape)[ok]
        self.value[d, p, v] += np.bincount(flat, weights=w, minlength=size).reshape(2, n_m, n_s)
        self.variance[d, p, v] += np.bincount(flat, weights=w * w, minlength=size).reshape(
            2, n_m, n_s
        )


def _signal_candidates(
    rng: np.random.Generator, mass: float, n: int, hcfg: HistogramConfig
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(matched mass residual from the peak, peak position, unmatched masses (k, 2), score)."""
    sigma = float(hcfg.resolution.sigma(mass))
    loc = mass * (1.0 - 0.002)
    reco = rng.random(n) < synthetic_efficiency(mass)
    k = int(reco.sum())
    u = rng.uniform(1e-9, 1 - 1e-9, k)
    peak = crystalball_ex.ppf(
        u, TRUE_BETA[0], DEFAULT_TAIL_N[0], sigma, TRUE_BETA[1], DEFAULT_TAIL_N[1], sigma, loc
    )
    unmatched = HIST_MAX * np.sqrt(rng.random((k, 2)))
    score = rng.beta(5.0, 1.5, k)
    return np.asarray(peak - loc), np.full(k, loc), unmatched, score


def make_histograms(
    config: AnalysisConfig,
    *,
    seed: int,
    signal_masses: Sequence[float] | None = None,
    events_per_mass: int = 2000,
    luminosity_pb: Mapping[str, float] | None = None,
    sqrt_s: float = 10.58,
    background_per_pb: float = 200.0,
    injection: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
    extra_background: tuple[float, float, float] | None = None,
) -> tuple[dict[str, hist.Hist], dict[str, object], SyntheticTruth]:
    """Histograms ``mgg`` (with score axis) and ``generated``, their provenance, and the truth.

    ``background_per_pb`` is the number of background candidates per pb^-1 over the whole
    M_gamma_gamma range before the score cut; ``injection`` = (mass GeV, coupling GeV^-1), or a
    list of them, hides prompt signals in the pseudo-data. ``extra_background`` = (centre GeV,
    width GeV, candidates per pb^-1) adds a Gaussian background component (MC dataset
    ``extra`` and the pseudo-data alike): a shape the background polynomial may not describe,
    for the spurious-signal test. Both are drawn after everything else, so the other contents
    do not depend on them.
    """
    rng = np.random.default_rng(seed)
    hcfg = config.histograms
    syst = config.systematics
    lumi = dict(luminosity_pb or {"2018": 445.0})
    masses = np.round(
        np.asarray(
            signal_masses if signal_masses is not None else config.simulation.signal.masses.masses()
        ),
        4,
    )
    g_ref = config.simulation.signal.coupling_GeV
    periods = list(lumi)
    l_tot = sum(lumi.values())
    signal_names = [signal_sample(m) for m in masses]
    extra = ["extra"] if extra_background is not None else []
    datasets = ["data", "ggg", "pi0g", "etag", "etapg", *extra, *signal_names]
    edges = mgg_edges(hcfg)
    score_edges = np.asarray(hcfg.score_edges)
    filler = _Filler(len(datasets), len(periods), edges, score_edges)
    generated = np.zeros((len(datasets), len(periods)))
    es, er = syst.energy_scale, syst.energy_resolution
    scale = {"escale_up": 1 + es, "escale_down": 1 - es}
    width = {"eres_up": 1 + er, "eres_down": 1 - er}
    wfac = {
        "trigger_up": 1 + TRIGGER_UNC,
        "trigger_down": 1 - TRIGGER_UNC,
    }

    def fill_signal(d: int, mass: float, n: int, weight_per_pb: Mapping[int, float] | None) -> int:
        """Fill n events over the periods (MC with weights when weight_per_pb, else data)."""
        total = 0
        for p_i, period in enumerate(periods):
            n_p = (
                round(n * lumi[period] / l_tot)
                if weight_per_pb is not None
                else n
                if p_i == 0
                else 0
            )
            if n_p == 0:
                continue
            resid, loc, unm, score = _signal_candidates(rng, mass, n_p, hcfg)
            total += len(resid)
            w = (weight_per_pb[p_i] / n_p) if weight_per_pb is not None else 1.0
            variations = VARIATIONS if weight_per_pb is not None else ("nominal",)
            for name in variations:
                v = VARIATIONS.index(name)
                matched = (loc + resid * width.get(name, 1.0)) * scale.get(name, 1.0)
                masses_all = np.concatenate(
                    [matched, unm[:, 0] * scale.get(name, 1.0), unm[:, 1] * scale.get(name, 1.0)]
                )
                truth = np.concatenate(
                    [np.zeros(len(matched), int), np.ones(2 * len(matched), int)]
                )
                scores = np.concatenate([score, score, score])
                filler.fill(
                    d,
                    p_i,
                    v,
                    truth,
                    masses_all,
                    scores,
                    np.full(len(masses_all), w * wfac.get(name, 1.0)),
                )
        return total

    for i, (mass, name) in enumerate(zip(masses, signal_names)):
        d = datasets.index(name)
        xs = {p_i: float(sigma_alp(mass, g_ref, sqrt_s)) * lumi[p] for p_i, p in enumerate(periods)}
        for p_i in xs:
            generated[d, p_i] = xs[p_i]
        fill_signal(d, float(mass), events_per_mass, xs)
        del i

    # backgrounds: smooth continuum (MC with weight 1/2: twice the expected statistics) and
    # meson peaks; pseudo-data are an independent Poisson draw of the same
    def fill_unmatched(
        d: int, p_i: int, m: FloatArray, s: FloatArray, w: float, is_data: bool
    ) -> None:
        """Fill background candidates (every variation for MC, the nominal for data)."""
        n = len(m)
        for name in VARIATIONS if not is_data else ("nominal",):
            filler.fill(
                d,
                p_i,
                VARIATIONS.index(name),
                np.ones(n, int),
                m * scale.get(name, 1.0),
                s,
                np.full(n, w * wfac.get(name, 1.0)),
            )

    def background(d: int, p_i: int, expected: float, is_data: bool) -> None:
        n = rng.poisson(expected) if is_data else int(2 * expected)
        w = 1.0 if is_data else expected / max(n, 1)
        m = _sample_density(rng, n, 0.02, HIST_MAX)
        fill_unmatched(d, p_i, m, rng.beta(1.2, 4.0, n), w, is_data)

    def meson(d: int, p_i: int, key: str, expected: float, is_data: bool) -> None:
        n = rng.poisson(expected) if is_data else int(4 * expected)
        w = 1.0 if is_data else expected / max(n, 1)
        m0 = MESON_MASSES[key]
        m = m0 + float(hcfg.resolution.sigma(m0)) * rng.standard_normal(n)
        fill_unmatched(d, p_i, m, rng.beta(4.0, 2.0, n), w, is_data)

    meson_per_pb = {"pi0g": ("pi0", 0.2), "etag": ("eta", 0.05), "etapg": ("etaprime", 0.02)}
    for p_i, period in enumerate(periods):
        expected = background_per_pb * lumi[period]
        background(datasets.index("ggg"), p_i, expected, False)
        background(datasets.index("data"), p_i, expected, True)
        for ds, (key, rate) in meson_per_pb.items():
            meson(datasets.index(ds), p_i, key, rate * lumi[period], False)
            meson(datasets.index("data"), p_i, key, rate * lumi[period], True)

    injections: list[Any] = (
        []
        if injection is None
        else [tuple(injection)]
        if np.isscalar(injection[0])
        else [tuple(i) for i in injection]  # type: ignore[arg-type]
    )
    injected = 0
    for m_inj, g_inj in injections:
        n_inj = rng.poisson(float(sigma_alp(m_inj, g_inj, sqrt_s)) * l_tot)
        injected += fill_signal(datasets.index("data"), float(m_inj), n_inj, None)
    if extra_background is not None:
        centre, spread, per_pb = extra_background
        for p_i, period in enumerate(periods):
            for d, is_data in ((datasets.index("extra"), False), (datasets.index("data"), True)):
                expected = per_pb * lumi[period]
                n = rng.poisson(expected) if is_data else int(2 * expected)
                w = 1.0 if is_data else expected / max(n, 1)
                m = centre + spread * rng.standard_normal(n)
                fill_unmatched(d, p_i, m, rng.beta(1.2, 4.0, n), w, is_data)

    h = hist.Hist(
        hist.axis.StrCategory(datasets, name="dataset"),
        hist.axis.StrCategory(periods, name="period"),
        hist.axis.StrCategory(list(VARIATIONS), name="variation"),
        hist.axis.StrCategory(["matched", "unmatched"], name="truth"),
        hist.axis.Variable(edges, name="mgg", label="M_gg [GeV]"),
        hist.axis.Variable(score_edges, name="score"),
        storage=hist.storage.Weight(),
    )
    view = h.view(flow=False)
    view["value"] = filler.value
    view["variance"] = filler.variance
    g = hist.Hist(
        hist.axis.StrCategory(datasets, name="dataset"),
        hist.axis.StrCategory(periods, name="period"),
        storage=hist.storage.Weight(),
    )
    gview = g.view(flow=False)
    gview["value"] = generated
    gview["variance"] = generated**2 / max(events_per_mass, 1)
    provenance: dict[str, object] = {
        "luminosity_pb": lumi,
        "signal_coupling_GeV": g_ref,
        "sqrt_s_GeV": dict.fromkeys(periods, sqrt_s),
        "synthetic": {
            "seed": seed,
            "events_per_mass": events_per_mass,
            "background_per_pb": background_per_pb,
            "injection": [list(i) for i in injections] or None,
            "extra_background": list(extra_background) if extra_background else None,
        },
    }
    truth = SyntheticTruth(
        tuple(float(m) for m in masses), g_ref, lumi, sqrt_s, background_per_pb, injection, injected
    )
    return {"mgg": h, "generated": g}, provenance, truth
