"""Generator-level events: fixed-multiplicity arrays per sample, lab frame."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TruthEvents"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TruthEvents:
    """Events of one process, arrays with a leading event axis of length n.

    photons: ``(n, k, 4)`` lab four-momenta; ``photon_vertex``: ``(n, k, 3)`` production points
    (cm); ``photon_delay_ns``: ``(n, k)`` production time after the collision (ALP flight);
    ``photon_from_alp``: ``(n, k)``; leptons: ``(n, m, 4)`` with PDG codes ``lepton_pdg`` ``(m,)``
    (11 electron, -11 positron, 13 mu-, -13 mu+); ``p_electron``/``p_positron``: ``(n, 4)`` the
    event's actual beam four-momenta (energy spread included); ``decay_r``: ``(n,)`` transverse
    distance of the ALP decay from the beam axis (cm), 0 without an ALP.
    """

    process: str
    p_electron: FloatArray
    p_positron: FloatArray
    photons: FloatArray
    photon_vertex: FloatArray
    photon_delay_ns: FloatArray
    photon_from_alp: npt.NDArray[np.bool_]
    leptons: FloatArray
    lepton_pdg: npt.NDArray[np.int32]
    decay_r: FloatArray
    mc_ma: float = 0.0

    def __len__(self) -> int:
        return len(self.p_electron)

    def take(self, index: npt.ArrayLike) -> TruthEvents:
        """The events at ``index`` (an integer array or a boolean mask)."""
        index = np.asarray(index)
        changes: dict[str, Any] = {
            f.name: getattr(self, f.name)[index]
            for f in fields(self)
            if f.name not in ("process", "mc_ma", "lepton_pdg")
        }
        return replace(self, **changes)

    @staticmethod
    def concatenate(parts: list[TruthEvents]) -> TruthEvents:
        """Events of the same process and layout, one after the other."""
        first = parts[0]
        changes: dict[str, Any] = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(first)
            if f.name not in ("process", "mc_ma", "lepton_pdg")
        }
        return replace(first, **changes)

    @staticmethod
    def prompt(
        process: str,
        p_electron: FloatArray,
        p_positron: FloatArray,
        photons: FloatArray,
        leptons: FloatArray | None = None,
        lepton_pdg: tuple[int, ...] = (),
    ) -> TruthEvents:
        """Events whose particles all come from the interaction point at t = 0."""
        n, k = photons.shape[:2]
        if leptons is None:
            leptons = np.zeros((n, 0, 4))
        return TruthEvents(
            process=process,
            p_electron=p_electron,
            p_positron=p_positron,
            photons=photons,
            photon_vertex=np.zeros((n, k, 3)),
            photon_delay_ns=np.zeros((n, k)),
            photon_from_alp=np.zeros((n, k), dtype=bool),
            leptons=leptons,
            lepton_pdg=np.asarray(lepton_pdg, dtype=np.int32),
            decay_r=np.zeros(n),
        )
