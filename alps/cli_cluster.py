"""``alps cluster``: look at a cluster profile without running a stage."""

from __future__ import annotations

from pathlib import Path

import click

from .cluster import find_dask_config, job_script, load_profiles

__all__ = ["cluster"]


@click.group()
def cluster() -> None:
    """Inspect the cluster profiles of dask_config.yaml."""


@cluster.command("show-script")
@click.option(
    "--cluster",
    "name",
    default="slurm",
    show_default=True,
    help="a batch profile of dask_config.yaml (slurm, htcondor, pbs)",
)
@click.option("--dask-config", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="profile file (default: $ALPS_DASK_CONFIG, ./dask_config.yaml, the shipped one)")  # fmt: skip
def show_script(name: str, dask_config: Path | None) -> None:
    """Print the batch job script a profile submits for each job (nothing is submitted)."""
    source = dask_config or find_dask_config()
    try:
        profiles = load_profiles(source)
        if name not in profiles:
            raise ValueError(f"unknown cluster profile {name!r}; known: {sorted(profiles)}")
        script = job_script(profiles[name])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# profile {name!r} of {source}")
    click.echo(script)
