"""Toy skims with the processor's parquet layout, for tests and benchmarks (no detector, no fit).

Three-photon events in the e+e- rest frame (√s = 10.58 GeV), with the kinematics that matter for
the selection: e+e- → γa, a → γγ (recoil photon 1 + cos²θ, isotropic decay in the ALP frame);
e+e- → γγγ with an infrared-enhanced soft photon and forward-peaked angles; γγ plus a soft
beam-background photon; e+e-γ and μ+μ-γ with lost charged particles (large kinematic-fit χ²);
π0γ, ηγ, η'γ peaks. Energies are smeared by 2% and directions by 5 mrad; ``mgg`` is the true pair
mass smeared by σ_m(m) ("after the kinematic fit"), ``mgg_raw`` is computed from the smeared
photons. A pre-selection keeps events whose photons all have E > 0.1 GeV and 17° < θ < 150°.
Features are computed from the smeared photons: energies, u = E²(1 + cosθ)/2, t = E²(1 − cosθ)/2,
thrust, sphericity, Fox–Wolfram R2, CLEO cones 0–3 about the thrust axis, θ and E of the photon
not in the pair, χ² and its p-value. Every event gives three rows, one per photon pairing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alps.config import MassResolution
from alps.contract import signal_sample
from models.data import SelectionSample, load_selection_sample

__all__ = ["TOY_BACKGROUNDS", "toy_events", "toy_selection_sample", "write_toy_skims"]

SQRT_S = 10.58
#: effective cross-sections (pb) after generator cuts, and χ² scale (lost particles)
TOY_BACKGROUNDS: dict[str, tuple[float, float]] = {
    "ggg": (186.0, 1.0),
    "gg": (120.0, 2.5),
    "eeg": (60.0, 6.0),
    "mumug": (10.0, 6.0),
    "pi0g": (0.05, 1.0),
    "etag": (0.02, 1.0),
    "etapg": (0.01, 1.0),
}
_MESON_MASS = {"pi0g": 0.135, "etag": 0.548, "etapg": 0.958}


def _unit(cos_t: np.ndarray, phi: np.ndarray) -> np.ndarray:
    sin_t = np.sqrt(np.clip(1 - cos_t**2, 0, None))
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def _basis(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.where(np.abs(z[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    x = np.cross(z, helper)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.cross(z, x)


def _cos_1pc2(rng: np.random.Generator, n: int) -> np.ndarray:
    """cosθ with density ∝ 1 + cos²θ (accept-reject)."""
    out = np.empty(0)
    while len(out) < n:
        c = rng.uniform(-1, 1, 2 * n)
        out = np.concatenate([out, c[rng.uniform(0, 2, 2 * n) < 1 + c**2]])
    return out[:n]


def _two_body(rng: np.random.Generator, mass: np.ndarray) -> np.ndarray:
    """γ + X(→γγ) photons (n, 3, 4): recoil first, then the two decay photons."""
    n = len(mass)
    s = SQRT_S**2
    e_rec = (s - mass**2) / (2 * SQRT_S)
    n_rec = _unit(_cos_1pc2(rng, n), rng.uniform(0, 2 * np.pi, n))
    e_a = SQRT_S - e_rec
    beta, gamma = e_rec / e_a, e_a / np.maximum(mass, 1e-9)
    z = -n_rec
    x, y = _basis(z)
    d = _unit(rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n))
    out = np.zeros((n, 3, 4))
    out[:, 0, 0], out[:, 0, 1:] = e_rec, e_rec[:, None] * n_rec
    for k, sign in ((1, 1.0), (2, -1.0)):
        e_star, pz = mass / 2, sign * mass / 2 * d[:, 2]
        px, py = sign * mass / 2 * d[:, 0], sign * mass / 2 * d[:, 1]
        energy, pz_lab = gamma * (e_star + beta * pz), gamma * (pz + beta * e_star)
        out[:, k, 0] = energy
        out[:, k, 1:] = px[:, None] * x + py[:, None] * y + pz_lab[:, None] * z
    return out


def _three_body(rng: np.random.Generator, x_soft: np.ndarray, forward: float) -> np.ndarray:
    """Planar massless three-photon events (n, 3, 4) with scaled soft energy ``x_soft``."""
    n = len(x_soft)
    x1 = rng.uniform(1 - x_soft, 1.0)
    x = np.stack([x1, 2 - x1 - x_soft, x_soft], axis=1) * SQRT_S / 2
    cos12 = np.clip((x[:, 2] ** 2 - x[:, 0] ** 2 - x[:, 1] ** 2) / (2 * x[:, 0] * x[:, 1]), -1, 1)
    axis = _unit(
        np.clip(np.tanh(forward * rng.normal(size=n)), -1, 1), rng.uniform(0, 2 * np.pi, n)
    )
    bx, by = _basis(axis)
    psi = rng.uniform(0, 2 * np.pi, n)
    v = np.cos(psi)[:, None] * bx + np.sin(psi)[:, None] * by
    sin12 = np.sqrt(1 - cos12**2)
    p1 = x[:, :1] * axis
    p2 = x[:, 1:2] * (cos12[:, None] * axis + sin12[:, None] * v)
    out = np.zeros((n, 3, 4))
    out[:, 0, 0], out[:, 0, 1:] = x[:, 0], p1
    out[:, 1, 0], out[:, 1, 1:] = x[:, 1], p2
    out[:, 2, 1:] = -p1 - p2
    out[:, 2, 0] = np.linalg.norm(out[:, 2, 1:], axis=1)
    perm = rng.permuted(np.tile([0, 1, 2], (n, 1)), axis=1)
    return out[np.arange(n)[:, None], perm]


def _pair_mass(p: np.ndarray, i: int, j: int) -> np.ndarray:
    q = p[:, i] + p[:, j]
    return np.sqrt(np.clip(q[:, 0] ** 2 - np.sum(q[:, 1:] ** 2, axis=1), 0, None))


def _features(p: np.ndarray) -> dict[str, np.ndarray]:
    e = p[:, :, 0]
    mom = p[:, :, 1:]
    cos = mom[:, :, 2] / np.linalg.norm(mom, axis=2)
    order = np.argsort(-e, axis=1)
    hi, lo = order[:, 0], order[:, 2]
    rows = np.arange(len(p))
    etot = e.sum(axis=1)
    f = {
        "E_high": e[rows, hi],
        "E_mid": e[rows, order[:, 1]],
        "E_low": e[rows, lo],
        "theta_high": np.arccos(cos[rows, hi]),
        "theta_low": np.arccos(cos[rows, lo]),
    }
    for tag, k in (("high", hi), ("low", lo)):
        f[f"u_{tag}"] = e[rows, k] ** 2 * (1 + cos[rows, k]) / 2
        f[f"t_{tag}"] = e[rows, k] ** 2 * (1 - cos[rows, k]) / 2
    f["thrust"] = 2 * f["E_high"] / etot
    tensor = np.einsum("nia,nib->nab", mom, mom) / np.sum(mom**2, axis=(1, 2))[:, None, None]
    lam = np.sort(np.linalg.eigvalsh(tensor), axis=1)
    f["sphericity"] = 1.5 * (lam[:, 0] + lam[:, 1])
    unit = mom / np.linalg.norm(mom, axis=2, keepdims=True)
    cij = np.einsum("nia,nja->nij", unit, unit)
    pij = np.einsum("ni,nj->nij", e, e)
    f["fw_r2"] = np.sum(pij * (1.5 * cij**2 - 0.5), axis=(1, 2)) / np.sum(pij, axis=(1, 2))
    angle = np.degrees(
        np.arccos(np.clip(np.abs(np.einsum("nia,na->ni", unit, unit[rows, hi])), 0, 1))
    )
    for cone in range(4):
        inside = (angle >= 10 * cone) & (angle < 10 * (cone + 1))
        f[f"cleo_cone{cone}"] = np.sum(e * inside, axis=1) / etot
    return f


def toy_events(
    rng: np.random.Generator, process: str, n: int, mass: float = 0.0, sigma_m: object = None
) -> dict[str, np.ndarray]:
    """Candidate columns (three rows per surviving event) for ``n`` generated events.

    ``process`` is ``"alp"`` (with ``mass`` in GeV) or a key of :data:`TOY_BACKGROUNDS`;
    ``sigma_m(m)`` gives the m_γγ resolution (GeV) used for ``mgg``.
    """
    chi2_scale = 1.0
    if process == "alp" or process in _MESON_MASS:
        true = _two_body(rng, np.full(n, mass if process == "alp" else _MESON_MASS[process]))
    elif process == "gg":
        true = _three_body(rng, rng.uniform(0.02, 0.06, n), forward=1.0)
        chi2_scale = TOY_BACKGROUNDS["gg"][1]
    else:
        x_soft = 0.03 * np.exp(rng.uniform(0, np.log(0.66 / 0.03), n))
        true = _three_body(rng, x_soft, forward=1.5 if process == "ggg" else 2.5)
        chi2_scale = TOY_BACKGROUNDS[process][1]
    smear = true.copy()
    smear[:, :, 0] *= 1 + 0.02 * rng.normal(size=(n, 3))
    direction = true[:, :, 1:] / np.linalg.norm(true[:, :, 1:], axis=2, keepdims=True)
    direction = direction + 0.005 * rng.normal(size=direction.shape)
    direction /= np.linalg.norm(direction, axis=2, keepdims=True)
    smear[:, :, 1:] = direction * smear[:, :, :1]
    theta = np.degrees(np.arccos(direction[:, :, 2]))
    keep = np.all((smear[:, :, 0] > 0.1) & (theta > 17) & (theta < 150), axis=1)
    true, smear = true[keep], smear[keep]
    m_events = len(true)
    feats = _features(smear)
    chi2 = rng.gamma(2.0, 2.0, m_events) * chi2_scale
    sigma = sigma_m if callable(sigma_m) else (lambda m: 0.006 + 0.008 * m)
    cols: dict[str, list[np.ndarray]] = {}
    for k, (i, j) in enumerate(((1, 2), (0, 2), (0, 1))):
        m_true = _pair_mass(true, i, j)
        row = {name: v for name, v in feats.items()}
        row["mgg"] = m_true + np.asarray(sigma(m_true)) * rng.normal(size=m_events)
        row["mgg_raw"] = _pair_mass(smear, i, j)
        row["theta_recoil"] = np.arccos(smear[:, k, 3] / smear[:, k, 0])
        row["recoil_E"] = smear[:, k, 0]
        row["chi2"] = chi2
        row["fit_pvalue"] = np.exp(-chi2 / 2) * (1 + chi2 / 2)
        row["pair"] = np.full(m_events, k, np.int8)
        row["truth_matched"] = np.full(m_events, process == "alp" and k == 0)
        row["event"] = np.flatnonzero(keep).astype(np.int64)
        for name, v in row.items():
            cols.setdefault(name, []).append(v)
    out = {name: np.concatenate(v) for name, v in cols.items()}
    order = np.lexsort((out["pair"], out["event"]))
    return {name: v[order] for name, v in out.items()}


def write_toy_skims(
    skim_dir: Path,
    masses: Sequence[float],
    events_per_mass: int,
    background_events: Mapping[str, int] | int,
    *,
    luminosity_pb: float = 445.0,
    seed: int = 0,
    files_per_dataset: int = 1,
    sigma_m: object = None,
) -> Path:
    """Write ``<skim_dir>/<dataset>/part*.parquet`` and ``summary.json`` for a toy sample."""
    skim_dir = Path(skim_dir)
    rng = np.random.default_rng(seed)
    if isinstance(background_events, int):
        background_events = dict.fromkeys(TOY_BACKGROUNDS, background_events)
    jobs = [(signal_sample(m), "alp", float(m), events_per_mass) for m in masses]
    jobs += [(name, name, 0.0, n) for name, n in background_events.items()]
    summary = {}
    for dataset, process, mass, n in jobs:
        if process == "alp":
            xsec = 0.118 * (1 - mass**2 / SQRT_S**2) ** 3
        else:
            xsec = TOY_BACKGROUNDS[process][0]
        weight = luminosity_pb * xsec / n
        cols = toy_events(rng, process, n, mass, sigma_m)
        rows = len(cols["event"])
        table = {
            "dataset": np.full(rows, dataset),
            "period": np.full(rows, "2018"),
            "exp": np.full(rows, 7, np.int32),
            "run": (1000 + cols["event"] % 7).astype(np.int32),
            "event": cols["event"],
            "pair": cols["pair"],
            "is_signal": np.full(rows, process == "alp"),
            "mc_ma": np.full(rows, mass),
            "truth_matched": cols["truth_matched"],
            "weight": np.full(rows, weight),
        }
        table.update(
            {
                k: v.astype(np.float64)
                for k, v in cols.items()
                if k not in ("event", "pair", "truth_matched")
            }
        )
        out = skim_dir / dataset
        out.mkdir(parents=True, exist_ok=True)
        bounds = np.linspace(0, rows // 3, files_per_dataset + 1).astype(int) * 3
        for part in range(files_per_dataset):
            sl = slice(bounds[part], bounds[part + 1])
            pq.write_table(
                pa.table({k: v[sl] for k, v in table.items()}), out / f"part{part}.parquet"
            )
        summary[dataset] = {
            "generated_weight": weight * n,
            "generated_events": n,
            "mc_ma": mass,
            "luminosity_pb": luminosity_pb,
        }
    (skim_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return skim_dir


def toy_selection_sample(
    skim_dir: Path,
    masses: Sequence[float],
    events_per_mass: int,
    background_events: Mapping[str, int] | int,
    *,
    toy_seed: int,
    split_seed: int,
    features: Sequence[str] | None = None,
) -> SelectionSample:
    """A toy sample's training and validation candidates: :func:`write_toy_skims` into
    ``skim_dir``, then :func:`models.data.load_selection_sample` with the seed's ±10 σ_m windows,
    one held-out mass, every background candidate and 30% of the events for validation."""
    write_toy_skims(skim_dir, masses, events_per_mass, background_events, seed=toy_seed)
    return load_selection_sample(
        skim_dir,
        window_nsigma=10.0,
        resolution=MassResolution(),
        held_out_masses=1,
        max_background_candidates=10**9,
        validation_fraction=0.3,
        seed=split_seed,
        features=features,
    )
