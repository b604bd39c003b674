"""NanoEvents schema for the Belle II-flavoured ntuples (design.md "The ntuple contract").

``cluster_*``, ``track_*`` and ``mc_photon_*`` branches become the jagged collections
``events.cluster``, ``events.track`` and ``events.mc_photon`` (their counters ``ncluster``,
``ntrack``, ``nmc_photon`` give the offsets); every other branch stays a flat field.
"""

from __future__ import annotations

from typing import Any

from coffea.nanoevents import transforms
from coffea.nanoevents.schemas.base import BaseSchema, zip_forms

__all__ = ["COLLECTIONS", "BelleIISchema"]

#: collection name -> counter branch
COLLECTIONS = {"cluster": "ncluster", "track": "ntrack", "mc_photon": "nmc_photon"}


class BelleIISchema(BaseSchema):
    """Zips the prefixed jagged branches into collections; leaves the rest as they are."""

    __dask_capable__ = True

    def __init__(self, base_form: dict[str, Any], *args: Any, **kwargs: Any):
        super().__init__(base_form, *args, **kwargs)
        branches = dict(zip(self._form["fields"], self._form["contents"]))
        for name, counter in COLLECTIONS.items():
            if counter not in branches:
                continue
            prefix = name + "_"
            fields = {
                key[len(prefix) :]: branches.pop(key)
                for key in list(branches)
                if key.startswith(prefix)
            }
            offsets = transforms.counts2offsets_form(branches.pop(counter))
            branches[name] = zip_forms(fields, name, record_name="NanoCollection", offsets=offsets)
            branches[name]["content"]["parameters"].update({"collection_name": name})
        self._form["fields"] = list(branches)
        self._form["contents"] = list(branches.values())
