"""The command line: thin click shells over plain functions that return exit codes.

User errors (`ConnectorError`) print one message and exit with their code; anything else is a
bug and prints a traceback with exit 3.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from connector import __version__
from connector.errors import ConfigError, ConnectorError
from connector.printable import printable


def _run(func: Callable[..., int], *args: Any, **kwargs: Any) -> None:
    try:
        code = func(*args, **kwargs)
    except ConfigError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(printable(diagnostic.format_text(), lines=True), err=True)
        click.echo("configuration has errors: run 'connector validate' for all findings", err=True)
        code = exc.exit_code
    except ConnectorError as exc:  # its message may quote order data: printed as data
        click.echo(printable(f"error: {exc}", lines=True), err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        code = 0
    except Exception:  # a bug: show everything
        traceback.print_exc()
        click.echo(f"connector {__version__}: internal error (a bug): please report it with the "
                   "traceback above", err=True)
        code = 3
    sys.exit(code)


project_option = click.option(
    "--project", "project", type=click.Path(file_okay=False, path_type=Path), default=".",
    show_default=True, help="Directory holding connector.yaml, mappings/ and rules/.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Events of a run on stderr: json writes one JSON object per event (run, "
                   "flow, order, rule, action, HTTP request), secrets masked. Default: "
                   "CONNECTOR_LOG_FORMAT, else text (the summary and progress only).")
def main(log_format: str | None) -> None:
    """Configuration-driven order connector for marketplace integrations."""
    import os

    from connector.observe import logs

    try:
        logs.configure(logs.choose(log_format, os.environ), sys.stderr)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="Output format (github: workflow annotations).")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
def validate(paths: tuple[Path, ...], project: Path, fmt: str, strict: bool) -> None:
    """Check the configuration: schema, references, templates and rule analysis.

    Exit 0 when clean, 1 on errors (or warnings with --strict), 2 on usage errors.
    """
    from connector.commands import validate as command

    _run(command.run, project, list(paths), fmt, strict, sys.stdout)


@main.command()
@click.argument("kind", type=click.Choice(["rules", "mapping", "project"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a file kind (for yaml-language-server)."""
    from connector.commands import schema as command

    _run(command.run, kind, sys.stdout)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--from", "flow", default=None, metavar="FLOW",
              help="The shipped flow to start from (its rules, both mappings, connector.yaml): "
                   "any flow of the shipped connector.yaml, by default its first; a name it "
                   "does not have is refused with the list of them.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, flow: str | None, force: bool) -> None:
    """Start a project in DIRECTORY from a shipped flow, with the schema modelines.

    Writes connector.yaml, mappings/, rules/ and .connector/schemas/ (for editors);
    `connector validate --strict` is clean on the result. Exit 2 rather than overwrite.
    """
    from connector.commands import init as command

    _run(command.run, directory, flow, force, sys.stdout)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@project_option
@click.option("--flow", help="Only this flow's cases.")
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too.")
@click.option("--cassette", "cassettes", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Replay this recorded run (apply --record) offline instead, comparing the "
                   "requests the rules make now with the recorded ones; repeatable.")
def test(paths: tuple[Path, ...], project: Path, flow: str | None, verbose: bool,
         cassettes: tuple[Path, ...]) -> None:
    """Run the rule files' test cases (order in, expected actions out).

    With --cassette, replay recorded runs instead: exit 1 when the rules now make a request
    the run did not (new request) or no longer make one it did (missing request).
    """
    from connector.commands import test as command

    _run(command.run, project, list(paths), flow, sys.stdout, verbose, list(cassettes))


@main.command()
@click.argument("order", type=click.Path(dir_okay=False, path_type=Path))
@project_option
@click.option("--flow", help="The flow to evaluate (needed when there are several).")
@click.option("--target", type=click.Path(dir_okay=False, path_type=Path),
              help="The counterpart order (raw or canonical JSON).")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE", help="Override a flow setting.")
def explain(order: Path, project: Path, flow: str | None, target: Path | None,
            overrides: tuple[str, ...]) -> None:
    """Show which rules match ORDER (raw API JSON or canonical) and why, offline."""
    from connector.commands import explain as command

    _run(command.run, project, order, flow, target, list(overrides), sys.stdout)


def _run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        project_option,
        click.option("--flow", help="Only this flow (default: every flow in connector.yaml)."),
        click.option("--since", metavar="ISO-8601", help="Start of the window instead of the stored cursor."),
        click.option("--limit", type=click.IntRange(min=1), help="At most this many orders per flow."),
        click.option("--sandbox", is_flag=True, help="Run against the built-in sandbox on loopback."),
        click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
                     help="Save the run's HTTP exchanges as a vcrpy cassette (secrets filtered)."),
        click.option("-v", "--verbose", is_flag=True,
                     help="List every failed, skipped and watched order (default: the first few)."),
        click.option("--order", "orders", multiple=True, metavar="ID",
                     help="Read and evaluate this order now, whatever the cursor and the retry "
                          "backoff say (each flow whose source knows it); repeatable."),
    ]):
        func = option(func)
    return func


@main.command()
@_run_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan(project: Path, flow: str | None, since: str | None, limit: int | None, sandbox: bool,
         record: Path | None, verbose: bool, orders: tuple[str, ...], fmt: str) -> None:
    """Show the actions apply would run, and the rule that chose each. Reads only."""
    from connector.commands import apply as command

    _run(command.run, project, flow, since, limit, sandbox, True, fmt, record, sys.stdout,
         verbose=verbose, orders=orders)


@main.command()
@_run_options
def apply(project: Path, flow: str | None, since: str | None, limit: int | None, sandbox: bool,
          record: Path | None, verbose: bool, orders: tuple[str, ...]) -> None:
    """Run the flows: fetch changed orders, evaluate the rules, execute the actions.

    Exit 0 when every action is done, 1 when some failed (recorded and retried next run),
    2 on a configuration error.
    """
    from connector.commands import apply as command

    _run(command.run, project, flow, since, limit, sandbox, False, "text", record, sys.stdout,
         verbose=verbose, orders=orders)


@main.command()
@project_option
@click.option("--flow", help="Only this flow (default: every flow in connector.yaml).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--sandbox", is_flag=True,
              help="Read the last `apply --sandbox` run's state (.connector/sandbox.db) "
                   "instead of the project's.")
def status(project: Path, flow: str | None, fmt: str, sandbox: bool) -> None:
    """Show each flow's cursor, last run, watched orders, and failed and parked actions.

    Reads the state store only. Exit 0, or 1 when an action is parked (a person must act:
    `connector retry ID` once the cause is fixed), so a monitoring check can alert on it.
    """
    from connector.commands import status as command

    _run(command.run, project, flow, fmt, sys.stdout, sandbox=sandbox)


@main.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@project_option
@click.option("--flow", help="Only this flow's actions.")
def retry(ids: tuple[str, ...], project: Path, flow: str | None) -> None:
    """Un-park the actions of an order (or of one idempotency key) and queue the order.

    The next run of its flow reads the order again and sends what the fresh state still
    calls for, with a fresh retry budget; `connector apply --order ID` does it now.
    Exit 2 when an ID has nothing parked.
    """
    from connector.commands import retry as command

    _run(command.run, project, list(ids), flow, sys.stdout)


@main.command()
@project_option
@click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True,
              help="Partitions this worker runs at once.")
@click.option("--every", type=click.IntRange(min=1), default=60, show_default=True,
              metavar="SECONDS", help="How often every partition is queued (the fleet shares it).")
@click.option("--once", is_flag=True,
              help="Queue every partition once, work until the queue is empty, then exit.")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), metavar="PORT",
              help="Serve Prometheus metrics of the runs on this port (0: any free port, "
                   "printed), at /metrics.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True,
              help="Address the metrics are served on (loopback unless told otherwise).")
@click.option("--stop-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
              metavar="SECONDS", help="After SIGTERM or Ctrl-C, the longest the worker takes "
                                      "to stop: its runs stop at their next order, and no wait "
                                      "of theirs lasts longer.")
def worker(project: Path, concurrency: int, every: int, once: bool, metrics_port: int | None,
           metrics_address: str, stop_timeout: float) -> None:
    """Run one worker of a fleet sharing the PostgreSQL state store in CONNECTOR_STATE.

    Partitions (flow x source marketplace) are queued every --every seconds and spread over
    the workers; one partition never runs twice at once. Stop with SIGTERM or Ctrl-C: running
    partitions stop at their next order (the heartbeat goes on meanwhile) and the worker exits
    within --stop-timeout seconds; a second signal stops it at once. Exit 0, or 1 when a
    partition's run failed (with --once).
    """
    from connector import worker as command

    _run(command.run, project, concurrency, every, once, sys.stdout,
         metrics_port=metrics_port, metrics_address=metrics_address, stop_timeout=stop_timeout)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds added to every response.")
@click.option("--orders", default="scenarios", show_default=True, metavar="SEED",
              help="What it holds: 'scenarios' (docs/scenarios.md), 'empty', or a number of "
                   "generated orders.")
@click.option("--rate-limits", is_flag=True, help="Answer 429 past SP-API's published rate limits.")
@click.option("--log", "log", is_flag=True, help="Print every request it answers (as '#' lines).")
def sandbox(host: str, port: int, latency: float, orders: str, rate_limits: bool,
            log: bool) -> None:
    """Serve the built-in simulator of Amazon, Walmart, VTEX and Adobe Commerce on loopback.

    It prints the settings that point `connector` at it (export lines to paste or source),
    what it holds, and when stopped what it served and holds."""
    from connector.sandbox import serve

    seed: str | int = int(orders) if orders.isdigit() else orders
    if seed not in ("scenarios", "empty") and not isinstance(seed, int):
        raise click.BadParameter(f"{orders!r}: give 'scenarios', 'empty' or a number of "
                                 "orders", param_hint="--orders")

    def serve_until_interrupted() -> int:
        serve(host=host, port=port, latency=latency, orders=seed, rate_limits=rate_limits,
              log=log)
        return 0

    _run(serve_until_interrupted)
