"""The Punzi figure of merit: minimal detectable cross-section σ_min, exact and differentiable.

Punzi's sensitivity (G. Punzi, "Sensitivity of searches for new signals and its optimization",
arXiv:physics/0308063) gives the smallest signal yield that is discovered at ``a`` standard
deviations with probability corresponding to ``b`` standard deviations (a = 5, b = 1.28: 5σ
discovery with 90% probability),

    S_min(B) = b²/2 + a·√B + (b/2)·√(b² + 4a·√B + 4B),

so that the minimal detectable cross-section of a selection with efficiency ε and expected
background B at integrated luminosity L is

    σ_min = S_min(B) / (ε·L).

Abudinen et al., Eur. Phys. J. C 82 (2022) 121 train a network on this quantity ("Punzi net"):
ε and B are made differentiable by summing a soft cut of the network output over signal and
weighted background candidates inside a mass window around each mass hypothesis, and the loss is
σ_min averaged over the mass hypotheses. :func:`punzi_loss` is that loss; with a steep soft cut it
equals :func:`sigma_min` of the hard cut (``tests/test_models_punzi.py``).

All functions are pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "combine_sigma",
    "grouped_sum",
    "punzi_loss",
    "punzi_loss_indexed",
    "s_min",
    "sigma_min",
    "sigma_min_torch",
    "soft_cut",
]

#: smallest efficiency used inside the differentiable loss (avoids an infinite σ_min)
_EFFICIENCY_FLOOR = 1e-9


def s_min(background: np.ndarray | float, a: float = 5.0, b: float = 1.28) -> np.ndarray:
    """Punzi's minimal detectable signal yield (events) for expected background ``background``.

    >>> round(float(s_min(0.0)), 4)  # b² when there is no background
    1.6384
    """
    bkg = np.clip(np.asarray(background, dtype=np.float64), 0.0, None)
    root = np.sqrt(bkg)
    return np.asarray(b * b / 2 + a * root + b / 2 * np.sqrt(b * b + 4 * a * root + 4 * bkg))


def sigma_min(
    efficiency: np.ndarray | float,
    background: np.ndarray | float,
    luminosity_pb: float,
    a: float = 5.0,
    b: float = 1.28,
) -> np.ndarray:
    """Minimal detectable cross-section in pb (Punzi, arXiv:physics/0308063).

    ``efficiency`` is the signal efficiency (fraction of generated events), ``background`` the
    expected background events at ``luminosity_pb`` (pb^-1). A zero efficiency gives ``inf``.

    >>> round(float(sigma_min(0.5, 100.0, 10.0)), 3)
    13.303
    """
    eff = np.asarray(efficiency, dtype=np.float64)
    smin = s_min(background, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(eff > 0, smin / (np.where(eff > 0, eff, 1.0) * luminosity_pb), np.inf)
    return np.asarray(out)


def sigma_min_torch(
    efficiency: torch.Tensor,
    background: torch.Tensor,
    luminosity_pb: float,
    a: float = 5.0,
    b: float = 1.28,
) -> torch.Tensor:
    """Differentiable :func:`sigma_min` (pb); the efficiency is floored at 1e-9 and B at 1e-12."""
    bkg = torch.clamp(background, min=1e-12)
    root = torch.sqrt(bkg)
    smin = b * b / 2 + a * root + b / 2 * torch.sqrt(b * b + 4 * a * root + 4 * bkg)
    return smin / (torch.clamp(efficiency, min=_EFFICIENCY_FLOOR) * luminosity_pb)


def soft_cut(scores: torch.Tensor, threshold: float, sharpness: float) -> torch.Tensor:
    """Soft version of ``scores >= threshold``: sigmoid(sharpness · (score − threshold)).

    Scores are network outputs in [0, 1]; as ``sharpness`` → ∞ this tends to the hard cut.
    """
    return torch.sigmoid(sharpness * (scores - threshold))


def grouped_sum(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Σ of ``values`` per group ``index`` (0 … ``n_groups`` − 1), in float64.

    Sorting and a cumulative sum instead of an atomic scatter keep the result bit-for-bit
    deterministic on GPUs.
    """
    order = torch.argsort(index, stable=True)
    idx = index[order].contiguous()
    zero = torch.zeros(1, dtype=torch.float64, device=values.device)
    csum = torch.cat([zero, torch.cumsum(values.to(torch.float64)[order], 0)])
    groups = torch.arange(n_groups, device=values.device, dtype=idx.dtype)
    start = torch.searchsorted(idx, groups, right=False)
    end = torch.searchsorted(idx, groups, right=True)
    return csum[end] - csum[start]


def combine_sigma(
    sigma: torch.Tensor,
    used: torch.Tensor,
    combine: str = "mean",
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """One loss from the per-mass σ_min over the masses flagged ``used``.

    ``"mean"``: the mean σ_min (pb; Abudinen et al., EPJC 82 (2022) 121), dominated by the masses
    with the largest σ_min; ``"log"``: the mean of ln σ_min (the log of the geometric mean), in
    which a 10% gain counts the same at every mass; ``"relative"``: the mean of σ_min / σ_ref per
    mass (``reference``, e.g. σ_min without selection), linear but scale-free.
    """
    n_used = used.sum()
    if combine == "mean":
        terms = sigma
    elif combine == "log":
        terms = torch.log(sigma)
    elif combine == "relative":
        if reference is None:
            raise ValueError("combine='relative' needs a reference sigma_min per mass")
        terms = sigma / reference.to(sigma)
    else:
        raise ValueError(f"combine {combine!r}; use 'mean', 'log' or 'relative'")
    return torch.where(used, terms, torch.zeros_like(terms)).sum() / n_used


def _signal_yields(
    scores: torch.Tensor,
    mass_index: torch.Tensor,
    weight: torch.Tensor,
    n_masses: int,
    threshold: float,
    sharpness: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-cut efficiency per mass and whether a mass has signal of positive weight."""
    s_cut = soft_cut(scores, threshold, sharpness).to(torch.float64)
    efficiency = grouped_sum(weight.to(torch.float64) * s_cut, mass_index, n_masses)
    present = grouped_sum((weight > 0).to(torch.float64), mass_index, n_masses) > 0
    return efficiency, present


def _loss_from_yields(
    efficiency: torch.Tensor,
    background: torch.Tensor,
    present: torch.Tensor,
    scores: torch.Tensor,
    luminosity_pb: float,
    a: float,
    b: float,
    mass_mask: torch.Tensor | None,
    combine: str,
    reference: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    sigma = sigma_min_torch(efficiency, background, luminosity_pb, a, b)
    used = present if mass_mask is None else present & mass_mask.to(present.device)
    if int(used.sum()) == 0:
        loss = scores.sum().to(torch.float64) * 0.0
    else:
        loss = combine_sigma(sigma, used, combine, reference)
    nan = torch.full_like(sigma, float("nan"))
    return loss, torch.where(used, sigma.detach(), nan)


def punzi_loss(
    signal_scores: torch.Tensor,
    signal_mass_index: torch.Tensor,
    signal_weight: torch.Tensor,
    background_scores: torch.Tensor,
    background_mgg: torch.Tensor,
    background_weight: torch.Tensor,
    window_lo: torch.Tensor,
    window_hi: torch.Tensor,
    luminosity_pb: float,
    *,
    threshold: float,
    sharpness: float,
    a: float = 5.0,
    b: float = 1.28,
    signal_scale: float = 1.0,
    background_scale: float = 1.0,
    mass_mask: torch.Tensor | None = None,
    combine: str = "mean",
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Punzi loss: σ_min (pb) combined over mass hypotheses, with a soft cut on the scores.

    Abudinen et al., EPJC 82 (2022) 121: for each mass hypothesis j with window
    [``window_lo[j]``, ``window_hi[j]``] (GeV),

        ε_j = signal_scale · Σ_{i: mass i = j} w_i · c(s_i),
        B_j = background_scale · Σ_{i: m_γγ,i in window j} w_i · c(s_i),

    with c the :func:`soft_cut` of the score s. ``signal_weight`` is each signal candidate's
    contribution to the efficiency of its own mass (weight / generated weight, zero outside the
    window: :func:`models.windows.efficiency_weights`); ``background_weight`` is expected events at
    ``luminosity_pb``. ``*_scale`` undo the sampling of a minibatch (total / batch). Masses with no
    signal candidate of positive weight in the inputs, or excluded by ``mass_mask``, are left out;
    the others are combined by :func:`combine_sigma` (``combine``: the seed's mean by default).
    Sums are in float64; sorting and cumulative sums keep the result deterministic on GPUs (no
    atomic scatter).

    Returns ``(loss, sigma_per_mass)``; ``sigma_per_mass`` is ``nan`` for masses left out.
    """
    n_masses = window_lo.shape[0]
    dtype = torch.float64
    efficiency, present = _signal_yields(
        signal_scores, signal_mass_index, signal_weight, n_masses, threshold, sharpness
    )
    b_cut = soft_cut(background_scores, threshold, sharpness).to(dtype)
    mgg_sorted, border = torch.sort(background_mgg.to(dtype), stable=True)
    zero = torch.zeros(1, dtype=dtype, device=signal_scores.device)
    bsum = torch.cat([zero, torch.cumsum((background_weight.to(dtype) * b_cut)[border], 0)])
    lo = torch.searchsorted(mgg_sorted, window_lo.to(dtype).contiguous(), right=False)
    hi = torch.searchsorted(mgg_sorted, window_hi.to(dtype).contiguous(), right=True)
    background = (bsum[hi] - bsum[lo]) * background_scale
    return _loss_from_yields(
        efficiency * signal_scale,
        background,
        present,
        signal_scores.sum() + background_scores.sum(),
        luminosity_pb,
        a,
        b,
        mass_mask,
        combine,
        reference,
    )


def punzi_loss_indexed(
    signal_scores: torch.Tensor,
    signal_mass_index: torch.Tensor,
    signal_weight: torch.Tensor,
    background_scores: torch.Tensor,
    background_mass_index: torch.Tensor,
    background_weight: torch.Tensor,
    n_masses: int,
    luminosity_pb: float,
    *,
    threshold: float,
    sharpness: float,
    a: float = 5.0,
    b: float = 1.28,
    signal_scale: float = 1.0,
    background_scale: float = 1.0,
    mass_mask: torch.Tensor | None = None,
    combine: str = "mean",
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`punzi_loss` for a mass-parametrised net: background rows carry their mass index.

    A parametrised net (Baldi et al., EPJC 76 (2016) 235) scores a background candidate once per
    mass hypothesis whose window it falls in, with that hypothesis as input; each such
    (candidate, mass j) row enters B_j only: B_j = background_scale · Σ_{rows of j} w · c(s).
    Everything else is as in :func:`punzi_loss`.
    """
    efficiency, present = _signal_yields(
        signal_scores, signal_mass_index, signal_weight, n_masses, threshold, sharpness
    )
    b_cut = soft_cut(background_scores, threshold, sharpness).to(torch.float64)
    background = grouped_sum(
        background_weight.to(torch.float64) * b_cut, background_mass_index, n_masses
    )
    return _loss_from_yields(
        efficiency * signal_scale,
        background * background_scale,
        present,
        signal_scores.sum() + background_scores.sum(),
        luminosity_pb,
        a,
        b,
        mass_mask,
        combine,
        reference,
    )
