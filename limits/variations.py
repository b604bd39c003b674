"""Relative effects of the stored systematic variations on the signal at one simulated mass.

For each variation histogram (``escale_up``, ``eres_down``, ``trigger_up``, ...) of a signal
dataset, three numbers are measured against the nominal histogram, all after the working point:

* ``shift``: change of the weighted mean of the truth-matched candidates within
  +-5 sigma_DSCB of the fitted peak, divided by m_a (a photon energy scale shift moves the peak by
  about the same fraction);
* ``width``: ratio - 1 of their weighted RMS in the same region (the resolution variation);
* ``yield``: ratio - 1 of all signal candidates in the nominal window (trigger, luminosity, and
  migrations across the working point or the window).

The histograms of a variation hold the same simulated events as the nominal one, so these
differences are far more precise than the statistical errors of either histogram.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from limits.inputs import Spectra
from limits.shapes import ShapeFit

__all__ = ["EFFECTS", "variation_effects"]

FloatArray = npt.NDArray[np.float64]

EFFECTS = ("shift", "width", "yield")
_CORE_NSIGMA = 5.0


def _moments(w: FloatArray, x: FloatArray) -> tuple[float, float]:
    total = w.sum()
    if total <= 0:
        return float("nan"), float("nan")
    mean = float(np.sum(w * x) / total)
    return mean, float(np.sqrt(max(np.sum(w * (x - mean) ** 2) / total, 0.0)))


def variation_effects(
    spectra: Spectra,
    dataset: str,
    fit: ShapeFit,
    sigma_m: float,
    window_nsigma: float,
) -> dict[str, dict[str, float]]:
    """``{variation: {"shift": ..., "width": ..., "yield": ...}}`` for every variation of
    ``dataset`` that differs from nominal (see the module docstring); ``fit`` is the nominal shape
    fit (its peak position and width define the core region), ``sigma_m`` the binning resolution
    that sets the nominal window m +- ``window_nsigma`` sigma_m."""
    mass = fit.mass
    centres = 0.5 * (spectra.edges[1:] + spectra.edges[:-1])
    loc = mass + fit.values.get("offset", 0.0)
    sigma = fit.values.get("sigma", sigma_m)
    core = np.abs(centres - loc) < _CORE_NSIGMA * sigma
    window = np.abs(centres - mass) < window_nsigma * sigma_m
    nom_m = spectra.get(dataset, "nominal", "matched")[0]
    nom_all = spectra.get(dataset, "nominal")[0]
    mean0, rms0 = _moments(nom_m[core], centres[core])
    yield0 = nom_all[window].sum()
    out: dict[str, dict[str, float]] = {}
    for variation in spectra.variations:
        if variation == "nominal" or not spectra.has_variation(dataset, variation):
            continue
        var_m = spectra.get(dataset, variation, "matched")[0]
        var_all = spectra.get(dataset, variation)[0]
        mean, rms = _moments(var_m[core], centres[core])
        out[variation] = {
            "shift": (mean - mean0) / mass if np.isfinite(mean) else 0.0,
            "width": rms / rms0 - 1.0 if rms0 > 0 and np.isfinite(rms) else 0.0,
            "yield": float(var_all[window].sum() / yield0 - 1.0) if yield0 > 0 else 0.0,
        }
    return out
