"""Luminosity and MC normalisation of the files actually processed.

The production manifest lists every file with its run block, event count and luminosity share.
When files are skipped (``processing.skip_bad_files``), the histograms must describe what was
read, not what was planned:

* the **data luminosity** of a run period is the manifest's less the luminosity shares of the
  data files skipped (pseudo-data files split a block's luminosity by their events), so a skipped
  data file lowers the luminosity the limits use by its share;
* the **MC** of one sample in one run block is generated with weight sigma L_b / N_b (L_b the
  block's luminosity, N_b its events). It is re-normalised per file to the processed data
  luminosity of the block and to the events actually processed:
  w -> w (L'_b / L_b) (N_b / N'_b), with L'_b, N'_b the processed luminosity and events. A sample
  that lost every file of a block cannot be re-normalised and is listed as lost.

Without pseudo-data (``simulation.data.enabled: false``) the luminosity is the manifest's. With
nothing skipped, every number is the manifest's, unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alps.contract import Manifest, is_data

__all__ = ["ProcessedLuminosity", "processed_luminosity"]


@dataclass(frozen=True)
class ProcessedLuminosity:
    """What the processed files amount to."""

    #: run period -> processed data luminosity (pb^-1)
    luminosity_pb: dict[str, float]
    #: run period -> luminosity of the whole production (pb^-1)
    planned_luminosity_pb: dict[str, float]
    #: file path -> weight factor (only files whose factor is not 1)
    weight_scale: dict[str, float] = field(default_factory=dict)
    #: "<sample> in <block>" whose every file was skipped (no MC left to normalise)
    lost: tuple[str, ...] = ()
    #: events in the processed files
    events: int = 0


def processed_luminosity(
    manifest: Manifest, workdir: str | Path, skipped: Iterable[str]
) -> ProcessedLuminosity:
    """Bookkeeping of ``manifest`` when the files ``skipped`` (paths as the fileset names them:
    ``workdir/ntuples/<path>``) are left out."""
    root = Path(workdir) / "ntuples"
    left_out = set(skipped)
    planned = dict(manifest.luminosity_pb)
    luminosity = dict(planned)
    block_lost: dict[str, float] = defaultdict(float)
    events: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    read_events = 0
    for entry in manifest.files:
        skipped_here = str(root / entry.path) in left_out
        read_events += 0 if skipped_here else entry.events
        if is_data(entry.sample):
            if skipped_here:
                block_lost[entry.block] += entry.luminosity_pb
                luminosity[entry.period] -= entry.luminosity_pb
            continue
        counts = events[(entry.sample, entry.block)]
        counts[0] += entry.events
        counts[1] += 0 if skipped_here else entry.events
    scale: dict[str, float] = {}
    for entry in manifest.files:
        path = str(root / entry.path)
        if is_data(entry.sample) or path in left_out:
            continue
        total, read = events[(entry.sample, entry.block)]
        factor = total / read
        if block_lost[entry.block]:
            factor *= 1.0 - block_lost[entry.block] / manifest.blocks[entry.block].luminosity_pb
        if factor != 1.0:
            scale[path] = factor
    lost = tuple(
        f"{sample} in {block}"
        for (sample, block), (total, read) in sorted(events.items())
        if read == 0 and total > 0
    )
    return ProcessedLuminosity(luminosity, planned, scale, lost, read_events)
