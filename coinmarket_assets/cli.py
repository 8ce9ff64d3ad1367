"""``coinmarket``: run the pipeline on the configured or the embedded PostgreSQL."""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg

from coinmarket_assets.coverage import (
    Gap,
    GapFill,
    all_gaps,
    describe_gaps,
    fetchable_gaps,
    format_report,
    stored_coverage,
)
from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.export import FORMATS, RELATIONS, ExportError, export, export_request
from coinmarket_assets.masking import mask
from coinmarket_assets.processes import (
    CHILD_STOP_SIGNAL,
    Stopped,
    die_with_parent,
    exit_code,
    stop_received,
    stop_signals_call,
    stop_signals_raise,
    stops_deferred,
)
from coinmarket_assets.settings import Settings, SettingsError, StorageSettings, load_settings
from coinmarket_assets.storage.backup import BackupError, backup, restore
from coinmarket_assets.storage.database import (
    DATABASE_URL_ENV,
    DatabaseNotConfiguredError,
    check_url,
    redact,
)
from coinmarket_assets.storage.embedded import EmbeddedPostgres, coinmarket_home
from coinmarket_assets.storage.migrations import apply_migrations
from coinmarket_assets.watchdog import Watchdog

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
SHUTDOWN_SECONDS = 60
# Exit codes of a command that could not be started, as a shell reports them.
COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126

# Stops what this process started (commands, the embedded server) if it dies without doing so.
WATCHDOG = Watchdog()


def _say(message: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(f"coinmarket: {message}", file=sys.stderr, flush=True)


@contextmanager
def database_environment() -> Iterator[str]:
    """Export COINMARKET_DATABASE_URL (starting the embedded server if unset), DAGSTER_HOME and
    the Dagster flags the project relies on (a value the user set wins)."""
    for name, value in DAGSTER_FLAGS.items():
        os.environ.setdefault(name, value)
    home = coinmarket_home()
    embedded = None
    url = StorageSettings.from_env().database_url
    if url:
        check_url(url)  # before any tool (libpq, pg_dump) could quote a misread piece of it
    try:
        if not url:
            embedded = EmbeddedPostgres(home / "postgres")
            WATCHDOG.guard_server(embedded.data_dir)
            with stops_deferred():  # initdb cut short would leave a data folder that never starts
                url = embedded.start()
            _say(f"embedded PostgreSQL running, data in {home / 'postgres'}")
            os.environ[DATABASE_URL_ENV] = url
        if not os.environ.get("DAGSTER_HOME"):
            dagster_home = home / "dagster_home"
            dagster_home.mkdir(exist_ok=True)
            shutil.copyfile(PROJECT_DAGSTER_YAML, dagster_home / "dagster.yaml")
            os.environ["DAGSTER_HOME"] = str(dagster_home)
        yield url
    finally:
        if embedded is not None:
            _stop_embedded(embedded)


def _stop_embedded(embedded: EmbeddedPostgres) -> None:
    if not embedded.attached:
        # Stopped while it started: the watchdog releases it once this process exits.
        return
    with stops_deferred():
        stopped = embedded.stop()
    WATCHDOG.forget_server(embedded.data_dir)
    _say(
        "embedded PostgreSQL stopped"
        if stopped
        else "embedded PostgreSQL left running for another coinmarket process"
    )


def _migrate(url: str) -> None:
    applied = apply_migrations(url)
    _say(f"applied migrations {', '.join(applied)}" if applied else "schema is current")


def _run_child(command: Sequence[str]) -> int:
    """Run ``command`` to completion, passing every stop signal on to it as one SIGINT.

    The child runs in its own session, so the signal reaches it exactly once whether it was
    typed in a terminal or sent to this process alone; ``dagster dev`` shuts down cleanly on
    SIGINT. A child still running a while after that is killed with its whole process group,
    and so is whatever it leaves running. If this process dies first, even by SIGKILL, the
    child gets SIGINT from the kernel and the watchdog kills its group.
    """
    signum = stop_received()
    if signum is not None:
        raise Stopped(signum)  # a stop was asked for: start nothing more
    child: subprocess.Popen | None = None
    stop_requested_at: list[float] = []

    def stop_child(_signum: int) -> None:
        stop_requested_at.append(time.monotonic())
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(CHILD_STOP_SIGNAL)

    # Installed before the child starts: a signal this process ignores (as background jobs do)
    # would stay ignored in the child, and dagster dev would never see Ctrl-C.
    with stop_signals_call(stop_child):
        try:
            child = _start_child(command)
        except OSError as error:
            return _not_started(command[0], error)
        WATCHDOG.guard_group(child.pid)
        if stop_requested_at:  # a signal came while it started, before it could be passed on
            stop_child(CHILD_STOP_SIGNAL)
        try:
            return exit_code(_wait(child, stop_requested_at))
        finally:
            _kill_group(child)  # whatever the command left running in its session
            child.wait()
            WATCHDOG.forget_group(child.pid)


def _start_child(command: Sequence[str]) -> subprocess.Popen:
    return subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent())


def _wait(child: subprocess.Popen, stop_requested_at: list[float]) -> int:
    while True:
        try:
            return child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            if stop_requested_at and time.monotonic() - stop_requested_at[0] > SHUTDOWN_SECONDS:
                _kill_group(child)


def _kill_group(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _not_started(program: str, error: OSError) -> int:
    """Report a command that could not be started as a shell does, with its exit code."""
    if isinstance(error, FileNotFoundError):
        reason = error.strerror if os.sep in program else "command not found"
        _say(f"error: {program}: {reason}")
        return COMMAND_NOT_FOUND
    _say(f"error: {program}: {error.strerror}")
    return COMMAND_NOT_EXECUTABLE


def _dagster(*args: str) -> list[str]:
    # Through the interpreter, so it works from a virtualenv that is not activated.
    return [sys.executable, "-m", "dagster", *args]


def cmd_dev(args: argparse.Namespace) -> int:
    with database_environment() as url:
        _migrate(url)
        _say(f"database {redact(url)}")
        return _run_child(
            _dagster(
                "dev", "-m", "coinmarket_assets.definitions", "-h", args.host, "-p", str(args.port)
            )
        )


def cmd_migrate(_: argparse.Namespace) -> int:
    with database_environment() as url:
        _migrate(url)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    with database_environment() as url:
        backup(url, Path(args.file))
    _say(f"data tables saved to {args.file}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with database_environment() as url:
        restore(url, Path(args.file))
        _migrate(url)
    _say(f"data tables restored from {args.file}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        _say("exec needs a command, e.g. coinmarket exec -- dagster asset list -m ...")
        return 2
    with database_environment() as url:
        _migrate(url)
        # The project's interpreter and its scripts come first, activated or not.
        bin_dir = str(Path(sys.executable).parent)
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
        return _run_child(command)


def cmd_export(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else None
    try:
        # Checked before the database starts, so that a typo fails at once.
        request = export_request(args.table, args.format, args.first_day, args.last_day, output)
        with database_environment():
            rows = export(request, sys.stdout.buffer)
    except ExportError as error:
        _say(f"error: {error}")
        return 2
    except BrokenPipeError:
        # The reader stopped early (say, `| head`): not an error; nothing more can be printed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    _say(f"exported {rows} rows of {args.table}" + (f" to {output}" if output else ""))
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    with database_environment() as url:
        if not args.fill:
            print(format_report(stored_coverage(url)), flush=True)
            return 0
        _migrate(url)  # it runs the pipeline, as exec does
        return _fill_gaps(url)


def _fill_gaps(url: str) -> int:
    """Start the runs the gap_fill_sensor would request (computed by the same functions), one
    after the other, waiting for each, and report the gaps they could not fill."""
    from coinmarket_assets.gap_fill import execute_command, gap_fill_request
    from coinmarket_assets.sources import SourceError

    settings = load_settings()
    before = stored_coverage(url)
    gaps, before_start = fetchable_gaps(before, settings.start_date)
    if before_start:
        _say(
            f"days before COINMARKET_START_DATE {settings.start_date} cannot be fetched: "
            f"{describe_gaps(before_start)}"
        )
    try:
        fills = _universe_gap_fills(url, gaps, settings) if gaps else []
    except SourceError as error:
        _say(f"error: the source could not list the universe: {mask(str(error))}")
        return 1
    if not fills:
        print(format_report(before), flush=True)
        _say("no gaps to fill")
        return 0
    for fill in fills:
        tickers = ", ".join(fill.tickers)
        _say(f"{len(fill.gaps)} gap(s) of {tickers} to fill in one run over {fill.days}")
        with execute_command(gap_fill_request(fill)) as command:
            code = _run_child(_dagster(*command))
        if code != 0:
            _say(
                f"error: the run for {fill.days} failed (exit code {code}); its logs are in the UI"
            )
            return code
    _report_filled(url, fills, settings)
    return 0


def _report_filled(url: str, fills: Sequence[GapFill], settings: Settings) -> None:
    after = stored_coverage(url)
    print(format_report(after), flush=True)
    # What the runs' coins still lack, the source lacks: the runs fetched every day of their gaps.
    remaining = fetchable_gaps(after, settings.start_date)[0]
    filled_coins = {coin_id for fill in fills for coin_id in fill.coin_ids}
    unfilled = [(coin, gap) for coin, gap in remaining if coin.coin_id in filled_coins]
    if unfilled:
        _say(
            f"{len(unfilled)} gap(s) could not be filled: the source has no candle for those "
            f"days: {describe_gaps(unfilled)}"
        )
    else:
        _say("every gap of the runs is filled" if all_gaps(after) else "every gap is filled")


def _universe_gap_fills(url: str, gaps: list[Gap], settings: Settings) -> list[GapFill]:
    """The runs for the gaps of the universe's coins (COINMARKET_TICKERS as the source lists
    them, waiting for the runs that use it; top:N: the stored listings' members); the other
    coins' gaps are named and left alone."""
    from coinmarket_assets.gap_fill import universe_gap_fills, universe_name
    from coinmarket_assets.resources import SOURCE_LOCK, MarketDataSourceResource
    from coinmarket_assets.storage.locks import session_lock

    source = MarketDataSourceResource()
    if settings.point_in_time_top is None:
        with session_lock(url, SOURCE_LOCK, "coinmarket coverage --fill"):
            fills, outside = universe_gap_fills(url, gaps, settings, source)
    else:
        fills, outside = universe_gap_fills(url, gaps, settings, source)
    if outside:
        _say(f"coins not in {universe_name(settings)} are left alone: {describe_gaps(outside)}")
    return fills


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day like 2020-01-31: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coinmarket", description=__doc__)
    commands = parser.add_subparsers(dest="command_name", required=True)

    dev = commands.add_parser("dev", help="run the Dagster UI and daemon (dagster dev)")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.set_defaults(handler=cmd_dev)

    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate.set_defaults(handler=cmd_migrate)

    saved = commands.add_parser("backup", help="save the data tables to a file (pg_dump)")
    saved.add_argument("file")
    saved.set_defaults(handler=cmd_backup)

    restored = commands.add_parser("restore", help="replace the data tables from a backup")
    restored.add_argument("file")
    restored.set_defaults(handler=cmd_restore)

    exec_ = commands.add_parser("exec", help="run a command with the database up")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    exec_.set_defaults(handler=cmd_exec)

    exported = commands.add_parser(
        "export",
        help="write a table or view as CSV or Parquet",
        description="Write a table or view, ordered by its key, as CSV (with a header) or "
        "Parquet. Views: latest_market (each coin's newest candle with its statistics) and "
        "daily_closes (exported wide: trade_date, then one column of closes per coin).",
    )
    exported.add_argument("table", metavar="TABLE", help=f"one of {', '.join(RELATIONS)}")
    exported.add_argument(
        "--from", dest="first_day", type=_day, metavar="DAY", help="first day (included)"
    )
    exported.add_argument(
        "--to", dest="last_day", type=_day, metavar="DAY", help="last day (included)"
    )
    exported.add_argument("--format", choices=FORMATS, default="csv")
    exported.add_argument(
        "--output", metavar="FILE", help="file to write (default for csv: standard output)"
    )
    exported.set_defaults(handler=cmd_export)

    covered = commands.add_parser(
        "coverage", help="list each coin's first and last stored day and every gap"
    )
    covered.add_argument(
        "--fill",
        action="store_true",
        help="fetch the missing days from the source, recompute the statistics they touch, "
        "and list the gaps that remain",
    )
    covered.set_defaults(handler=cmd_coverage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stop_signals_raise():
            return args.handler(args)
    except Stopped as stop:
        _say(f"stopped by {stop}")
        return 128 + stop.signum
    except (BackupError, DatabaseNotConfiguredError, SettingsError, psycopg.Error) as error:
        _say(f"error: {redact(str(error))}")
        return 1
    finally:
        WATCHDOG.close()


if __name__ == "__main__":
    sys.exit(main())
