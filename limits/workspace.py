"""pyhf workspaces for one ALP mass hypothesis: window, background polynomial, signal, systematics.

Construction (documented choices):

* **Window**: the M_gamma_gamma bins whose centres lie within m_a +- N sigma_m(m_a) (N =
  ``LimitsConfig.window_nsigma``, sigma_m the resolution the binning follows) and inside the scan
  range, minus the bins inside the excluded pi0/eta/eta' regions, so no meson peak leaks into a
  neighbouring window.
* **Background**: a polynomial of order k (per mass by an F-test up to ``background_polynomial_order``,
  or that order fixed; :mod:`limits.background`) in
  the Bernstein basis on the window, B(m) = sum_j c_j b_{j,k}(t), t = (m - lo)/(hi - lo). Each
  basis polynomial integrated over the bins is one sample with its own free, unconstrained
  ``normfactor`` c_j in [0, 100] (templates scaled so that c_j = 1 for a flat spectrum of the
  observed size; inits from a non-negative least-squares pre-fit). This gives the fit exactly the
  freedom of the seed's floating third-order polynomial, restricted to non-negative Bernstein
  coefficients, which keeps the background non-negative everywhere in the window (Bernstein,
  Comm. Soc. Math. Kharkow 13 (1912) 1; the RooBernstein convention). No background systematics
  are needed: any smooth distortion of the background is absorbed by the free polynomial.
  With ``limits.background_fit: sidebands`` the coefficients are instead fixed at a fit to the
  sidebands (pyhf ``fixed`` parameters); the spurious-signal test of :mod:`limits.background`
  measures what either form makes of a background-only spectrum.
* **Signal**: the interpolated shape N_sig (f DSCB + (1 - f) Cheb) integrated over the bins,
  normalised to L x epsilon x sigma_ref, with the POI ``mu`` = sigma / sigma_ref (sigma_ref a
  power of ten near the expected sensitivity, so mu is of order one).
* **Systematics on the signal**: photon energy scale and resolution as ``histosys`` (the template
  re-made with the peak shift, width ratio and yield ratio measured on the stored variation
  histograms); trigger and luminosity as ``normsys`` from the variation histograms (config numbers
  when a variation is absent); signal efficiency as ``normsys`` (configured uncertainty added in
  quadrature to the efficiency's MC statistical error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls
from scipy.special import betainc

__all__ = [
    "MassWindow",
    "bernstein_bin_integrals",
    "build_workspace",
    "mass_label",
    "mass_window",
]

FloatArray = npt.NDArray[np.float64]

#: upper bound of the Bernstein coefficients (in units of a flat spectrum of the observed size)
BKG_COEFF_MAX = 100.0
#: upper bound of the POI (in units of sigma_ref)
POI_MAX = 100.0


def mass_label(mass: float) -> str:
    """``m<mass in MeV>``, the name of a mass point's channel and workspace file."""
    return f"m{round(mass * 1000)}"


@dataclass(frozen=True)
class MassWindow:
    """Bins of one mass hypothesis: indices into the full M_gamma_gamma axis, and the nominal
    window [lo, hi] (GeV) on which the polynomials are defined."""

    mass: float
    lo: float
    hi: float
    bins: tuple[int, ...]

    def edges(self, full_edges: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Lower and upper edges (GeV) of the window's bins."""
        idx = np.asarray(self.bins, dtype=np.int64)
        return full_edges[idx], full_edges[idx + 1]


def mass_window(
    full_edges: FloatArray,
    mass: float,
    sigma_m: float,
    nsigma: float,
    scan_range: tuple[float, float],
    excluded: Sequence[tuple[float, float]] = (),
) -> MassWindow:
    """The window of ``mass`` (see the module docstring); ``excluded`` are GeV intervals."""
    lo, hi = mass - nsigma * sigma_m, mass + nsigma * sigma_m
    centres = 0.5 * (full_edges[1:] + full_edges[:-1])
    keep = (centres > max(lo, scan_range[0])) & (centres < min(hi, scan_range[1]))
    for a, b in excluded:
        keep &= ~((centres > a) & (centres < b))
    return MassWindow(mass, lo, hi, tuple(int(i) for i in np.flatnonzero(keep)))


def bernstein_bin_integrals(
    lower: FloatArray, upper: FloatArray, lo: float, hi: float, degree: int
) -> FloatArray:
    """(bins, degree + 1): integral over each bin of the Bernstein basis polynomials
    b_{j,k}(t) = C(k, j) t^j (1 - t)^(k - j), t = (m - lo)/(hi - lo), normalised so that the basis
    sums to the bin's fraction of [lo, hi] (integral of b_{j,k} over [0, t] is
    I_t(j + 1, k - j + 1)/(k + 1), I the regularised incomplete beta function)."""
    t_lo = np.clip((np.asarray(lower) - lo) / (hi - lo), 0.0, 1.0)
    t_hi = np.clip((np.asarray(upper) - lo) / (hi - lo), 0.0, 1.0)
    j = np.arange(degree + 1)
    a, b = j + 1.0, degree - j + 1.0
    return np.asarray(
        (betainc(a, b, t_hi[:, None]) - betainc(a, b, t_lo[:, None])) / (degree + 1.0)
    )


def _round_pow10(x: float) -> float:
    return float(10.0 ** np.round(np.log10(x))) if x > 0 and np.isfinite(x) else 1.0


def build_workspace(
    *,
    mass: float,
    observed: FloatArray,
    background_basis: FloatArray,
    signal_per_pb: FloatArray,
    histosys_per_pb: Mapping[str, tuple[FloatArray, FloatArray]],
    normsys: Mapping[str, tuple[float, float]],
    background_fixed: FloatArray | None = None,
) -> tuple[dict[str, Any], float]:
    """A pyhf workspace (dict, schema 1.0.0) for one mass, and its sigma_ref (pb).

    ``observed`` are the counts in the window; ``background_basis`` the Bernstein bin integrals
    (:func:`bernstein_bin_integrals`); ``signal_per_pb`` the expected signal per bin for a
    cross-section of 1 pb; ``histosys_per_pb`` maps a systematic to its (up, down) templates per
    pb; ``normsys`` maps one to its (hi, lo) factors; ``background_fixed`` are coefficients of
    ``background_basis`` (e.g. from a sideband fit) at which the background is held fixed
    (pyhf ``fixed`` parameters), None for a floating background.
    """
    observed = np.asarray(observed, dtype=np.float64)
    scale = max(float(observed.sum()), 1.0)
    templates = scale * np.asarray(background_basis)  # (bins, k+1)
    if background_fixed is None:
        coeffs, _ = nnls(templates, observed)
        coeffs = np.clip(coeffs, 1e-3, BKG_COEFF_MAX)
    else:
        coeffs = np.asarray(background_fixed, dtype=np.float64) / scale

    bkg_est = np.maximum(templates @ coeffs, 0.5)
    signal_per_pb = np.asarray(signal_per_pb, dtype=np.float64)
    inv_var = float(np.sum(signal_per_pb**2 / bkg_est))
    sigma_a = 1.0 / np.sqrt(inv_var) if inv_var > 0 else 1.0
    sigma_ref = _round_pow10(3.0 * sigma_a)

    label = mass_label(mass)
    sig_mods: list[dict[str, Any]] = [{"name": "mu", "type": "normfactor", "data": None}]
    for name, (hi, lo) in normsys.items():
        sig_mods.append(
            {"name": name, "type": "normsys", "data": {"hi": float(hi), "lo": float(lo)}}
        )
    for name, (up, down) in histosys_per_pb.items():
        sig_mods.append(
            {
                "name": name,
                "type": "histosys",
                "data": {
                    "hi_data": [float(v) for v in sigma_ref * np.asarray(up)],
                    "lo_data": [float(v) for v in sigma_ref * np.asarray(down)],
                },
            }
        )
    samples: list[dict[str, Any]] = [
        {
            "name": "signal",
            "data": [float(v) for v in sigma_ref * signal_per_pb],
            "modifiers": sig_mods,
        }
    ]
    parameters: list[dict[str, Any]] = [{"name": "mu", "bounds": [[0.0, POI_MAX]], "inits": [1.0]}]
    for j in range(templates.shape[1]):
        samples.append(
            {
                "name": f"bkg_bernstein{j}",
                "data": [float(v) for v in templates[:, j]],
                "modifiers": [{"name": f"bkg_c{j}", "type": "normfactor", "data": None}],
            }
        )
        par: dict[str, Any] = {
            "name": f"bkg_c{j}",
            "bounds": [[0.0, BKG_COEFF_MAX]],
            "inits": [float(coeffs[j])],
        }
        if background_fixed is not None:
            par["fixed"] = True
        parameters.append(par)
    spec = {
        "channels": [{"name": label, "samples": samples}],
        "observations": [{"name": label, "data": [float(v) for v in observed]}],
        "measurements": [
            {"name": f"alp_{label}", "config": {"poi": "mu", "parameters": parameters}}
        ],
        "version": "1.0.0",
    }
    return spec, sigma_ref
