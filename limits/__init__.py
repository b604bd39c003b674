"""Signal shapes, per-mass pyhf workspaces, CLs limits, significances and coupling exclusion.

The stage reads only the histogram files of the processor (design.md "Histograms are the
contract"); :func:`run_limits` is what ``alps limits`` calls, :func:`fit_signal_shapes` the shapes
step alone.
"""

from __future__ import annotations

from limits.cls import UpperLimit, asymptotic_upper_limit
from limits.coupling import coupling_limit, decay_geometry, decay_probability
from limits.inputs import Spectra, project_histograms
from limits.interpolation import ShapeModel, SmoothCurve
from limits.likelihood import CompiledModel, compile_workspace
from limits.pipeline import fit_signal_shapes, run_limits
from limits.results import LimitsResult
from limits.scan import MassResult, analyse_workspace, analyse_workspaces
from limits.shapes import ShapeFit, ShapeParameters, fit_shape
from limits.significance import Discovery, GlobalSignificance, gross_vitells
from limits.toys import Coverage, limit_coverage

__all__ = [
    "CompiledModel",
    "Coverage",
    "Discovery",
    "GlobalSignificance",
    "LimitsResult",
    "MassResult",
    "ShapeFit",
    "ShapeModel",
    "ShapeParameters",
    "SmoothCurve",
    "Spectra",
    "UpperLimit",
    "analyse_workspace",
    "analyse_workspaces",
    "asymptotic_upper_limit",
    "compile_workspace",
    "coupling_limit",
    "decay_geometry",
    "decay_probability",
    "fit_shape",
    "fit_signal_shapes",
    "gross_vitells",
    "limit_coverage",
    "project_histograms",
    "run_limits",
]
