"""Dataset (sample) names: the one parser of ``alp_m<MeV>`` and ``data`` for every stage.

>>> signal_sample(0.175)
'alp_m175'
>>> signal_mass("alp_m2500"), signal_mass("ggg")
(2.5, None)
>>> is_signal("alp_m175"), is_data("data")
(True, True)
"""

from __future__ import annotations

import re

__all__ = ["DATA_SAMPLE", "SIGNAL_PREFIX", "is_data", "is_signal", "signal_mass", "signal_sample"]

#: the pseudo-data's dataset name
DATA_SAMPLE = "data"
#: signal datasets are ``alp_m<mass in MeV>``
SIGNAL_PREFIX = "alp_m"
_SIGNAL = re.compile(rf"^{SIGNAL_PREFIX}(\d+)$")


def signal_sample(mass: float) -> str:
    """Dataset name of the ALP signal at ``mass`` GeV: ``alp_m<MeV>`` (rounded to 1 MeV)."""
    if not mass > 0:
        raise ValueError(f"signal mass must be positive, got {mass!r} GeV")
    return f"{SIGNAL_PREFIX}{round(mass * 1000)}"


def signal_mass(sample: str) -> float | None:
    """The ALP mass in GeV of a signal dataset name; ``None`` for any other dataset."""
    match = _SIGNAL.match(sample)
    return None if match is None else int(match.group(1)) / 1000.0


def is_signal(sample: str) -> bool:
    """Whether ``sample`` names an ALP signal dataset."""
    return _SIGNAL.match(sample) is not None


def is_data(sample: str) -> bool:
    """Whether ``sample`` is the (pseudo-)data."""
    return sample == DATA_SAMPLE
