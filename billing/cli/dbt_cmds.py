"""`billing dbt ...`: run the dbt project in dbt/ with the project's profile and settings."""

from __future__ import annotations

from pathlib import Path

import typer

from billing.analytics.dbt_project import PLAN_SEED, PROJECT_DIR, check_warehouse, run_dbt, write_plan_seed
from billing.cli.app import app, console
from billing.settings import configured_catalog, get_settings

dbt_app = typer.Typer(
    help="Build and test the analytics marts with dbt (extra arguments are passed to dbt).",
    no_args_is_help=True,
)
app.add_typer(dbt_app, name="dbt")

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
TARGET_HELP = "dbt target: local (the `billing up` endpoint) or prod (a ClickHouse server); default BILLING_DBT_TARGET or local."


def _dbt(verb: list[str], ctx: typer.Context, target: str | None, plans: bool = False, warehouse: bool = True) -> None:
    settings = get_settings()
    if warehouse:
        check_warehouse(settings)
    catalog = configured_catalog() if plans else None
    if catalog is not None:
        console.print(f"plan seed: {len(catalog.plans)} plan(s) from the pricing catalog")
    console.print(f"dbt {' '.join(verb)}: raw database {settings.clickhouse_database} -> marts database "
                  f"{settings.clickhouse_marts_database} at {settings.clickhouse_url}")
    result = run_dbt(settings, [*verb, *ctx.args], target=target, catalog=catalog)
    if result.returncode != 0:
        raise typer.Exit(result.returncode)


@dbt_app.command(context_settings=PASS_THROUGH)
def build(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Refresh the plan seed, then seed, run and test every model (`dbt build`)."""
    _dbt(["build"], ctx, target, plans=True)


@dbt_app.command(context_settings=PASS_THROUGH)
def run(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Build the models (`dbt run`), e.g. `billing dbt run --select fct_transaction+`."""
    _dbt(["run"], ctx, target)


@dbt_app.command(context_settings=PASS_THROUGH)
def test(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Run the data tests, reconciliations included (`dbt test`)."""
    _dbt(["test"], ctx, target)


@dbt_app.command(context_settings=PASS_THROUGH)
def seed(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Refresh the plan seed and load the seeds (`dbt seed`)."""
    _dbt(["seed"], ctx, target, plans=True)


@dbt_app.command(context_settings=PASS_THROUGH)
def freshness(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Check how recent the raw sources are (`dbt source freshness`)."""
    _dbt(["source", "freshness"], ctx, target)


@dbt_app.command(context_settings=PASS_THROUGH)
def parse(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Validate the project, its semantic layer (metrics) included, and write the manifests into
    <state>/dbt/target (`dbt parse`; the warehouse need not run)."""
    _dbt(["parse"], ctx, target, warehouse=False)


@dbt_app.command(context_settings=PASS_THROUGH)
def docs(ctx: typer.Context, target: str | None = typer.Option(None, "--target", help=TARGET_HELP)) -> None:
    """Generate the documentation site (`dbt docs generate`) into <state>/dbt/target."""
    _dbt(["docs", "generate"], ctx, target)


@dbt_app.command()
def plans(to: Path = typer.Option(PROJECT_DIR / PLAN_SEED, "--to", help="CSV file to write.")) -> None:
    """Write the pricing catalog's plans as the dim_plan seed (default: the shipped project's, which
    `billing dbt build` and `seed` refresh on their own working copy anyway)."""
    count = write_plan_seed(configured_catalog(), to)
    console.print(f"plan seed: {count} plan(s) from the pricing catalog -> {to}")
