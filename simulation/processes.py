"""The process registry: one row per simulated process, read by everything that names processes.

Production (which generator makes a sample), the ntuple's ``mc_process`` code table, the
configuration's ``simulation.backgrounds`` and ``simulation.data.nature.backgrounds`` validation
and the report's plot labels all read :data:`PROCESSES`. Adding a background is one new row here
plus its generator (a factory taking the generator cuts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .generators import (
    Generator,
    MesonGammaGenerator,
    make_eeg,
    make_eeg_isr,
    make_gg,
    make_gg_isr,
    make_ggg,
    make_ggg_isr,
    make_ggg_lost,
    make_mumug,
)

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "MC_BACKGROUNDS",
    "NATURE_BACKGROUNDS",
    "PROCESSES",
    "PROCESS_CODES",
    "Process",
    "background_names",
    "get_process",
    "process_labels",
]

Family = Literal["signal", "qed", "meson", "beyond_lo"]


@dataclass(frozen=True)
class Process:
    """One simulated process.

    ``name`` is the sample name and the key everywhere; ``code`` the ntuple's ``mc_process``;
    ``factory`` makes its generator from the generator cuts (None for the signal, which the
    configuration's masses and coupling make); ``in_mc`` / ``in_nature``: part of the default MC
    backgrounds / of the pseudo-data's extra ("nature") components; ``tracks_lost``: the process
    is background only when both tracks are lost, its events are weighted (MC) or counted (data)
    with that probability and simulated without tracks; ``unitary_with``: the LO process whose
    pseudo-data cross-section gives up this process's emission probability when both are in the
    pseudo-data (a radiator is unitary).
    """

    name: str
    code: int
    label: str
    family: Family
    factory: Callable[[GeneratorCuts], Generator] | None
    description: str
    in_mc: bool = False
    in_nature: bool = False
    tracks_lost: bool = False
    unitary_with: str | None = None


def _meson(meson: str, extra_photon: bool = False) -> Callable[[GeneratorCuts], Generator]:
    def factory(cuts: GeneratorCuts) -> Generator:
        return MesonGammaGenerator(meson, extra_photon)

    return factory


PROCESSES: tuple[Process, ...] = (
    Process("alp", 0, r"$a \to \gamma\gamma$", "signal", None, "ALP signal e+e- -> gamma a"),
    Process("ggg", 1, r"$\gamma\gamma\gamma$", "qed", make_ggg,
            "e+e- -> 3 gamma at LO, all photons in the ECL", in_mc=True),
    Process("gg", 2, r"$\gamma\gamma$ + background cluster", "qed", make_gg,
            "e+e- -> 2 gamma at LO + a beam-background cluster", in_mc=True),
    Process("eeg", 3, r"$e^+e^-\gamma$", "qed", make_eeg,
            "radiative Bhabha with both tracks lost", in_mc=True, tracks_lost=True),
    Process("pi0g", 4, r"$\pi^0\gamma$", "meson", _meson("pi0"), "e+e- -> pi0 gamma", in_mc=True),
    Process("etag", 5, r"$\eta\gamma$", "meson", _meson("eta"), "e+e- -> eta gamma", in_mc=True),
    Process("etapg", 6, r"$\eta'\gamma$", "meson", _meson("etaprime"), "e+e- -> eta' gamma",
            in_mc=True),
    Process("pi0gg", 7, r"$\pi^0\gamma\gamma$", "meson", _meson("pi0", True),
            "e+e- -> pi0 gamma gamma", in_mc=True),
    Process("etagg", 8, r"$\eta\gamma\gamma$", "meson", _meson("eta", True),
            "e+e- -> eta gamma gamma", in_mc=True),
    Process("etapgg", 9, r"$\eta'\gamma\gamma$", "meson", _meson("etaprime", True),
            "e+e- -> eta' gamma gamma", in_mc=True),
    Process("mumug", 10, r"$\mu^+\mu^-\gamma$", "qed", make_mumug,
            "e+e- -> mu+ mu- gamma, the calibration channel", in_mc=True),
    Process("ggg_lost", 11, r"$\gamma\gamma\gamma$, one lost + bkg. cluster", "beyond_lo",
            make_ggg_lost, "3 gamma with one photon outside the ECL", in_nature=True),
    Process("gg_isr", 12, r"$\gamma\gamma$ + collinear ISR $\gamma$", "beyond_lo", make_gg_isr,
            "2 gamma with a collinear ISR photon (beyond LO)", in_nature=True,
            unitary_with="gg"),
    Process("eeg_isr", 13, r"$e^+e^-\gamma$ + collinear ISR $\gamma$", "beyond_lo",
            make_eeg_isr, "radiative Bhabha with a collinear ISR photon, both tracks lost",
            in_nature=True, tracks_lost=True, unitary_with="eeg"),
    Process("ggg_isr", 14, r"$\gamma\gamma\gamma$ + collinear ISR $\gamma$", "beyond_lo",
            make_ggg_isr, "3 gamma with a collinear ISR photon (beyond LO)", in_nature=True,
            unitary_with="ggg"),
)  # fmt: skip

_BY_NAME = {p.name: p for p in PROCESSES}
#: ``mc_process`` codes (also written into every file's meta)
PROCESS_CODES: dict[str, int] = {p.name: p.code for p in PROCESSES}
#: the default MC backgrounds and the pseudo-data's default extra components
MC_BACKGROUNDS: tuple[str, ...] = tuple(p.name for p in PROCESSES if p.in_mc)
NATURE_BACKGROUNDS: tuple[str, ...] = tuple(p.name for p in PROCESSES if p.in_nature)

assert len(set(PROCESS_CODES.values())) == len(PROCESSES), "process codes must be unique"


def get_process(name: str) -> Process:
    """The registry row of ``name`` (a signal sample ``alp_m<MeV>`` is the ``alp`` row)."""
    key = "alp" if name.startswith("alp") else name
    try:
        return _BY_NAME[key]
    except KeyError:
        raise ValueError(f"unknown process {name!r}; known: {background_names()}") from None


def background_names() -> tuple[str, ...]:
    """Every background process the registry can generate."""
    return tuple(p.name for p in PROCESSES if p.factory is not None)


def process_labels() -> dict[str, str]:
    """Plot label per process name."""
    return {p.name: p.label for p in PROCESSES}
