"""The process registry: one row per simulated process, on the ground floor.

Production (which generator makes a sample, :mod:`simulation.processes`), the ntuple's
``mc_process`` code table, the configuration's ``simulation.backgrounds`` and
``simulation.data.nature.backgrounds`` validation and the report's plot labels all read
:data:`PROCESSES`. The table imports nothing of the project (the configuration, the lowest layer,
reads it): a row names its generator factory as ``"module:function"``, which
:mod:`simulation.processes` resolves. Adding a background is one new row here plus its generator.

>>> PROCESS_CODES["ggg"], get_process("alp_m1175").name
(1, 'alp')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    ``generator`` the factory ``"module:function"`` called as ``function(cuts, *generator_args)``
    (None for the signal, which the configuration's masses and coupling make); ``in_mc`` /
    ``in_nature``: part of the default MC backgrounds / of the pseudo-data's extra ("nature")
    components; ``tracks_lost``: background only when both tracks are lost, its events are
    weighted (MC) or counted (data) with that probability and simulated without tracks;
    ``unitary_with``: the LO process whose pseudo-data cross-section gives up this process's
    emission probability when both are in the pseudo-data (a radiator is unitary).
    """

    name: str
    code: int
    label: str
    family: Family
    generator: str | None
    description: str
    generator_args: tuple[str | bool, ...] = ()
    in_mc: bool = False
    in_nature: bool = False
    tracks_lost: bool = False
    unitary_with: str | None = None


_QED = "simulation.generators.qed:"
_MESON = "simulation.generators.mesons:make_meson"
_BEYOND = "simulation.generators.beyond_lo:"

PROCESSES: tuple[Process, ...] = (
    Process("alp", 0, r"$a \to \gamma\gamma$", "signal", None, "ALP signal e+e- -> gamma a"),
    Process("ggg", 1, r"$\gamma\gamma\gamma$", "qed", _QED + "make_ggg",
            "e+e- -> 3 gamma at LO, all photons in the ECL", in_mc=True),
    Process("gg", 2, r"$\gamma\gamma$ + background cluster", "qed", _QED + "make_gg",
            "e+e- -> 2 gamma at LO + a beam-background cluster", in_mc=True),
    Process("eeg", 3, r"$e^+e^-\gamma$", "qed", _QED + "make_eeg",
            "radiative Bhabha with both tracks lost", in_mc=True, tracks_lost=True),
    Process("pi0g", 4, r"$\pi^0\gamma$", "meson", _MESON, "e+e- -> pi0 gamma", ("pi0",),
            in_mc=True),
    Process("etag", 5, r"$\eta\gamma$", "meson", _MESON, "e+e- -> eta gamma", ("eta",),
            in_mc=True),
    Process("etapg", 6, r"$\eta'\gamma$", "meson", _MESON, "e+e- -> eta' gamma", ("etaprime",),
            in_mc=True),
    Process("pi0gg", 7, r"$\pi^0\gamma\gamma$", "meson", _MESON, "e+e- -> pi0 gamma gamma",
            ("pi0", True), in_mc=True),
    Process("etagg", 8, r"$\eta\gamma\gamma$", "meson", _MESON, "e+e- -> eta gamma gamma",
            ("eta", True), in_mc=True),
    Process("etapgg", 9, r"$\eta'\gamma\gamma$", "meson", _MESON, "e+e- -> eta' gamma gamma",
            ("etaprime", True), in_mc=True),
    Process("mumug", 10, r"$\mu^+\mu^-\gamma$", "qed", _QED + "make_mumug",
            "e+e- -> mu+ mu- gamma, the calibration channel", in_mc=True),
    Process("ggg_lost", 11, r"$\gamma\gamma\gamma$, one lost + bkg. cluster", "beyond_lo",
            _BEYOND + "make_ggg_lost", "3 gamma with one photon outside the ECL",
            in_nature=True),
    Process("gg_isr", 12, r"$\gamma\gamma$ + collinear ISR $\gamma$", "beyond_lo",
            _BEYOND + "make_gg_isr", "2 gamma with a collinear ISR photon (beyond LO)",
            in_nature=True, unitary_with="gg"),
    Process("eeg_isr", 13, r"$e^+e^-\gamma$ + collinear ISR $\gamma$", "beyond_lo",
            _BEYOND + "make_eeg_isr",
            "radiative Bhabha with a collinear ISR photon, both tracks lost",
            in_nature=True, tracks_lost=True, unitary_with="eeg"),
    Process("ggg_isr", 14, r"$\gamma\gamma\gamma$ + collinear ISR $\gamma$", "beyond_lo",
            _BEYOND + "make_ggg_isr", "3 gamma with a collinear ISR photon (beyond LO)",
            in_nature=True, unitary_with="ggg"),
)  # fmt: skip

_BY_NAME = {p.name: p for p in PROCESSES}
#: ``mc_process`` codes (also written into every file's meta)
PROCESS_CODES: dict[str, int] = {p.name: p.code for p in PROCESSES}
#: the default MC backgrounds and the pseudo-data's default extra components
MC_BACKGROUNDS: tuple[str, ...] = tuple(p.name for p in PROCESSES if p.in_mc)
NATURE_BACKGROUNDS: tuple[str, ...] = tuple(p.name for p in PROCESSES if p.in_nature)

if len(set(PROCESS_CODES.values())) != len(PROCESSES) or len(_BY_NAME) != len(PROCESSES):
    raise RuntimeError("process names and codes must be unique")


def get_process(name: str) -> Process:
    """The registry row of ``name`` (a signal sample ``alp_m<MeV>`` is the ``alp`` row)."""
    key = "alp" if name.startswith("alp") else name
    try:
        return _BY_NAME[key]
    except KeyError:
        raise ValueError(f"unknown process {name!r}; known: {background_names()}") from None


def background_names() -> tuple[str, ...]:
    """Every background process the registry can generate."""
    return tuple(p.name for p in PROCESSES if p.generator is not None)


def process_labels() -> dict[str, str]:
    """Plot label per process name."""
    return {p.name: p.label for p in PROCESSES}
