"""The ``alps`` command line: one subcommand per stage, ``alps run`` for the whole chain.

Each subcommand parses its options, loads and validates the configuration, and runs its stage
through :func:`alps.pipeline.run_stages` (so a stage with unchanged inputs is skipped). Every
option is checked before any stage starts (a refused command changes nothing, and creates no work
directory); a command that starts no Dask cluster takes no cluster options.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_cluster import cluster
from .config import ConfigError
from .consistency import load_checked_config
from .packages import PackageClash, check_top_level_packages
from .pipeline import STAGES, RunContext, run_stages

__all__ = ["main"]


def _common(*, dask: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every subcommand takes; ``dask``: also the cluster options (not for commands
    that start no Dask cluster, which refuse them as unknown options)."""
    options = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="analysis YAML (default: the shipped default slice)"),
        click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("alps-output"), show_default=True, help="work directory"),
        click.option("--seed", type=click.IntRange(min=0), default=None, help="override the seed"),
        click.option("--slice", "run_slice", default=None,
                     help="run-registry slice, e.g. 2018, run1, exp=12, lumi=10"),
        click.option("--quiet", is_flag=True, help="no progress bars"),
        click.option("--verbose", "-v", is_flag=True, help="log what the libraries do (logging)"),
    ]  # fmt: skip
    if dask:
        options += [
            click.option("--cluster", default="local", show_default=True,
                         help="profile of dask_config.yaml"),
            click.option("--scheduler", default=None, help="address of a running Dask scheduler"),
            click.option("--workers", type=click.IntRange(min=1), default=None,
                         help="local workers, or batch jobs, instead of the profile's"),
        ]  # fmt: skip

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _check_cluster(cluster: str, scheduler: str | None) -> None:
    """Refuse an unknown cluster profile (or an unreadable profile file) before anything runs."""
    if scheduler is not None:
        return
    from .cluster import find_dask_config, load_profiles

    try:
        profiles = load_profiles()
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--cluster {cluster}: {exc}") from None
    if cluster not in profiles:
        raise click.BadParameter(
            f"no profile {cluster!r} in {find_dask_config()}; profiles: {', '.join(profiles)}",
            param_hint="--cluster",
        )


def _context(
    config_path: Path | None,
    workdir: Path,
    seed: int | None,
    run_slice: str | None,
    quiet: bool,
    verbose: bool,
    cluster: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunContext:
    """Validate every option and the configuration (nothing is created or removed yet)."""
    if verbose:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger().setLevel(logging.INFO)
    try:
        config = load_checked_config(config_path, seed=seed, run_slice=run_slice)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from simulation.production import selected_registry

    try:
        selected_registry(config)
    except ValueError as exc:
        raise click.UsageError(f"run_slice / run_registry: {exc}") from None
    _check_workdir(workdir)
    _check_cluster(cluster, scheduler)
    # progress bars redraw a line with carriage returns: only on a terminal, not in a log file
    progress = not quiet and sys.stderr.isatty()
    return RunContext(config, workdir, cluster, scheduler, workers, progress, echo=click.echo)


def _check_workdir(workdir: Path) -> None:
    """A work directory that cannot be written is refused before anything runs (one that does
    not exist yet is not created here: its nearest existing parent must be writable)."""
    if workdir.exists() and not workdir.is_dir():
        raise click.BadParameter(f"{workdir} is not a directory", param_hint="--workdir")
    try:
        if workdir.exists():
            probe = workdir / ".alps-write-test"
            probe.touch()
            probe.unlink()
        else:
            parent = next(p for p in workdir.absolute().parents if p.exists())
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(f"{parent} is not writable")
    except OSError as exc:
        raise click.UsageError(f"--workdir {workdir}: cannot write there: {exc}") from None


def _has_files(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*"))


def _run(ctx: RunContext, names: list[str], force: str | None = None) -> None:
    """Run the stages; a command that fails leaves no work directory it created empty."""
    created = not ctx.workdir.exists()
    try:
        run_stages(ctx, names, force=force)
    except (ConfigError, ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(_os_error_message(exc)) from exc
    finally:
        ctx.close()
        if created and ctx.workdir.is_dir() and not _has_files(ctx.workdir):
            shutil.rmtree(ctx.workdir, ignore_errors=True)


def _os_error_message(exc: OSError) -> str:
    """A full disk or a read-only file system said as such, with the path, not as a traceback."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on the device while writing{where}: free space or use another --workdir"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write{where}: {exc.strerror} (a read-only or protected work directory?)"
    return f"{type(exc).__name__}{where}: {exc.strerror or exc}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alps")
def main() -> None:
    """Belle II search for axion-like particles in e+e- -> gamma a, a -> gamma gamma.

    Stages: generate | calibrate | process | train | limits | report; `alps run` chains them,
    skipping stages whose inputs are unchanged.
    """
    try:
        check_top_level_packages()
    except PackageClash as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@_common()
def generate(**options: Any) -> None:
    """Generate run-dependent MC and pseudo-data ntuples (ROOT) under WORKDIR/ntuples."""
    _run(_context(**options), ["generate"], force="generate")


@main.command()
@_common()
def calibrate(**options: Any) -> None:
    """Measure photon resolution and scale (mu mu gamma) and trigger efficiency: WORKDIR/calibration."""
    _run(_context(**options), ["calibrate"], force="calibrate")


@main.command()
@_common()
@click.option(
    "--with-model",
    is_flag=True,
    help="fill the score axis with the trained selection (WORKDIR/models)",
)
def process(with_model: bool, **options: Any) -> None:
    """Process the ntuples into histograms (WORKDIR/histograms) and skims (WORKDIR/skims)."""
    stage = "score" if with_model else "process"
    _run(_context(**options), [stage], force=stage)


@main.command()
@_common()
def train(**options: Any) -> None:
    """Train the selection (Punzi net, XGBoost) on the skims and choose the working point."""
    _run(_context(**options), ["train"], force="train")


@main.command()
@_common()
@click.option("--working-point", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="score cut (default: training.working_point, else the trained choice)")  # fmt: skip
def limits(working_point: float | None, **options: Any) -> None:
    """Signal shapes, pyhf workspaces, CLs limits and significances from the stored histograms,
    then the report (which says the working point the limits used)."""
    ctx = _context(**options)
    if working_point is not None:
        training = ctx.config.training.model_copy(update={"working_point": working_point})
        ctx.config = ctx.config.model_copy(update={"training": training})
    _run(ctx, ["shapes", "limits", "report"], force="limits")


@main.command()
@_common(dask=False)
def report(**options: Any) -> None:
    """Write the HTML report (WORKDIR/report/index.html) from the stored outputs."""
    _run(_context(**options), ["report"], force="report")


@main.command()
@_common()
@click.option(
    "--force",
    "force",
    type=click.Choice(list(STAGES)),
    default=None,
    help="re-run from this stage on",
)
def run(force: str | None, **options: Any) -> None:
    """Run the whole chain on the configuration, skipping what is up to date."""
    _run(_context(**options), list(STAGES), force=force)


@main.command()
@_common(dask=False)
@click.option("--costs", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="per-event costs from a `benchmarks/scale.py --json` file (default: the "
                   "costs measured on the development machine, alps/plan.py)")  # fmt: skip
def plan(costs: Path | None, **options: Any) -> None:
    """Say what `alps run` would do, without running it: files, events, chunks and tasks per
    stage, disk per output, estimated core-hours per stage."""
    from .plan import format_plan, plan_run

    ctx = _context(**options)
    click.echo(format_plan(plan_run(ctx.config, costs)))


main.add_command(cluster)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
