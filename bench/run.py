"""``make bench``: wall time and peak memory of the pipeline, against docs/benchmarks.md's targets.

Scenarios (``--only`` picks some, comma-separated):

- ``one-date``: one report date end to end on the demo data, twice: the first date into an
  empty database (``first-date``: history fetched, dbt parses the project for the new database
  path), then the next date on the same database, as the daily schedule runs it. Three times
  from scratch; the median is reported. Target 20 s.
- ``backfill-1y``, ``backfill-5y``, ``backfill-10y``: one-run backfills of the whole universe,
  reports included, from an empty database, over replay data from ``bench/generate.py`` (real
  series from ../shared/reference-data where present). Target: 10 years within 300 s; the cost
  should be linear in the number of dates (10y/1y time against 10).
- ``backfill-2y``, ``backfill-2y-default-instance``: the same two-year one-run backfill with the
  project's instance, then with Dagster's default one (a ``DAGSTER_HOME`` holding no
  ``dagster.yaml``: no pool, Dagster's own SQLite event log). Target: the default at most 3x the
  project's.
- ``breadth-5000x10y``: ``dbt build`` of the A-share breadth models over 5,000 stocks x 10 years
  of per-stock bars (``raw.cn_stock_bars``, written straight into DuckDB). Target 60 s of dbt.

Every pipeline run is the CLI a person uses (``dagster asset materialize -m
pipelines.definitions --select '*'``), in a subprocess with its own DuckDB file, reports folder
and Dagster instance (the project's ``.dagster_home/dagster.yaml``). Wall time is the
subprocess's; peak memory is the largest resident set of the process and its children (dbt),
from ``wait4``. Step times come from the run's Dagster events, dbt model times from dbt's
``run_results.json``: they say where the time goes. Nothing here runs in ``make test``.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from dagster import DagsterInstance

from assets.dbt import window_environment
from bench.generate import REFERENCE_DATA, generate, unconfirmed_moves
from market_intel.calendars import sessions
from market_intel.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR, PROJECT_ROOT
from market_intel.storage import ReportWindow, ensure_raw_schema

DAGSTER = str(Path(sys.executable).with_name("dagster"))
INSTANCE_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"
RESULTS_START, RESULTS_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
DEMO_DATE = "2026-03-22"
DAY_BEFORE_DEMO = "2026-03-21"
ONE_DATE_REPEATS = 3
TARGETS = {"one-date": 20.0, "backfill-10y": 300.0, "breadth-5000x10y": 60.0}
BACKFILL_YEARS = {"backfill-1y": 1, "backfill-2y": 2, "backfill-5y": 5, "backfill-10y": 10}
# Backfills on Dagster's default instance, by the project-instance scenario they repeat.
DEFAULT_INSTANCE = {"backfill-2y-default-instance": "backfill-2y"}
DEFAULT_INSTANCE_RATIO_TARGET = 3.0
SCENARIOS = [
    "one-date",
    *BACKFILL_YEARS,
    *DEFAULT_INSTANCE,
    "breadth-5000x10y",
    "postgres-1y",
]
LOOKBACK_DAYS = 550  # MARKET_INTEL_LOOKBACK_DAYS's default: history a first run fetches


@dataclass
class Measurement:
    """One scenario's outcome."""

    scenario: str
    description: str
    command: str
    status: str = "not run"
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    dates: int = 0
    reports_written: int = 0
    run_s: float | None = None
    target_s: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    dbt_models: dict[str, float] = field(default_factory=dict)
    dagster_events: int = 0
    dated_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.status != "success":
            return f"{self.status.upper()} (no verdict)"
        if self.target_s is None:
            return "-"
        if self.wall_s <= self.target_s:
            return f"met ({self.target_s - self.wall_s:.1f} s to spare)"
        over = self.wall_s - self.target_s
        return f"MISSED by {over:.1f} s (+{100 * over / self.target_s:.0f}%)"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory = next(
        (
            f"{int(line.split()[1]) / 1024**2:.1f} GiB"
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "unknown",
    )
    versions = {
        name: metadata.version(name)
        for name in ("dagster", "dagster-dbt", "duckdb", "dbt-core", "dbt-duckdb", "pandas")
    }
    return {
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "python": platform.python_version(),
        **versions,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def measure(command: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float):
    """Run ``command``: (exit code, wall seconds, peak RSS in MB of it and its children, timed out).

    ``wait4`` reports the largest resident set of the process and of its waited-for children
    (the dbt subprocess), which is the run's peak memory as far as one process goes.
    """
    started = time.perf_counter()
    timed_out = False
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                timed_out = True
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return process.returncode, wall, usage.ru_maxrss / 1024, timed_out


def pipeline_env(
    root: Path, source: str, replay: Path | None = None, project_instance: bool = True
) -> dict[str, str]:
    """The run's environment; its ``DAGSTER_HOME`` holds the project's dagster.yaml, or none
    (Dagster's default instance)."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if project_instance:
        shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_INTEL_SOURCE": source,
        "MARKET_INTEL_DB": str(root / "market_intel.duckdb"),
        "MARKET_INTEL_REPORTS_DIR": str(root / "reports"),
        "MARKET_INTEL_REPLAY_DIR": str(replay or root / "replay"),
        "MARKET_INTEL_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
    }


def run_pipeline(result: Measurement, root: Path, env: dict, partition: list[str], timeout: float):
    """One CLI run of the whole pipeline, with its step times read back from its events."""
    arguments = ["asset", "materialize", "-m", "pipelines.definitions", "--select", "*"]
    result.command = " ".join(["dagster", *arguments[:-1], "'*'", *partition])
    log = root / f"{result.scenario}.log"
    reports = root / "reports"
    before = set(reports.glob("????-??-??.json")) if reports.exists() else set()
    code, result.wall_s, result.peak_rss_mb, timed_out = measure(
        [DAGSTER, *arguments, *partition], env, PROJECT_ROOT, log, timeout
    )
    result.reports_written = (
        len(set(reports.glob("????-??-??.json")) - before) if reports.exists() else 0
    )
    failed = read_events(result, Path(env["DAGSTER_HOME"]))
    result.status = "timeout" if timed_out else "success" if code == 0 else "failed"
    if code != 0:
        result.notes.append(f"exit {code}, failed steps {failed or 'none'}; log {log}")


def read_events(result: Measurement, home: Path) -> list[str]:
    """Step durations (seconds) and the run's duration from the instance's event log; returns
    the failed steps."""
    with instance_at(home) as instance:
        runs = instance.get_runs()
        if not runs:
            return []
        run = runs[0]
        failed = record_run(result, instance.all_logs(run.run_id))
        result.dbt_models, elapsed = dbt_model_times(run.run_id)
        if elapsed is not None:
            dbt_step = result.steps.get("market_intel_dbt", 0.0)
            result.notes.append(
                f"dbt's own elapsed time {elapsed:.1f} s of the dbt step's {dbt_step:.1f} s"
            )
    return failed


def record_run(result: Measurement, events: list) -> list[str]:
    """The run's event counts, duration and step durations (seconds) into ``result``; returns
    the failed steps."""
    from dagster import DagsterEventType

    starts, failed = {}, []
    begun = ended = None
    result.dagster_events = len(events)
    result.dated_events = sum(
        1 for event in events if event.dagster_event and event.dagster_event.partition
    )
    for event in events:
        kind = event.dagster_event_type
        if kind == DagsterEventType.RUN_START:
            begun = event.timestamp
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            ended = event.timestamp
        elif kind == DagsterEventType.STEP_START:
            starts[event.step_key] = event.timestamp
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            result.steps[event.step_key] = event.timestamp - starts.pop(event.step_key)
            if kind == DagsterEventType.STEP_FAILURE:
                failed.append(event.step_key)
    if begun and ended:
        result.run_s = ended - begun
    return failed


def dbt_model_times(run_id: str) -> tuple[dict[str, float], float | None]:
    """dbt's own time per node and in all, from the run's target folder (dagster-dbt names it)."""
    found = sorted(DBT_PROJECT_DIR.glob(f"target/*-{run_id[:7]}-*/run_results.json"))
    return node_times(found[-1]) if found else ({}, None)


def node_times(run_results: Path) -> tuple[dict[str, float], float]:
    content = json.loads(run_results.read_text())
    times = {row["unique_id"]: float(row["execution_time"]) for row in content["results"]}
    ordered = dict(sorted(times.items(), key=lambda item: -item[1]))
    return ordered, float(content["elapsed_time"])


@contextmanager
def instance_at(home: Path) -> Iterator[DagsterInstance]:
    """The Dagster instance of ``home``: its event log storage finds its files by DAGSTER_HOME."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous


def event_cost_ms(workdir: Path, dates: int = 300) -> float:
    """Milliseconds Dagster spends per event in a one-run backfill, with this instance config.

    Times one-run backfills of 1 and ``dates`` report dates of an asset that does nothing: the
    difference is one materialization event per extra date (the range is planned with one
    event, DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS), so this, times a run's event
    count, is the part of its time that is Dagster bookkeeping.
    """
    from dagster import BackfillPolicy, asset, materialize

    from pipelines.partitions import report_dates

    @asset(partitions_def=report_dates, backfill_policy=BackfillPolicy.single_run())
    def probe() -> None:
        """Nothing: only Dagster's own events."""

    def backfill_seconds(instance, last: str) -> float:
        started = time.perf_counter()
        range_tags = {"dagster/asset_partition_range_start": "2020-01-01"}
        range_tags["dagster/asset_partition_range_end"] = last
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        materialize([probe], instance=instance, tags=range_tags, run_config=quiet)
        return time.perf_counter() - started

    home = fresh(workdir / "event-probe")
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    last = (date(2020, 1, 1) + timedelta(days=dates - 1)).isoformat()
    with instance_at(home) as instance:
        one = backfill_seconds(instance, "2020-01-01")
        many = backfill_seconds(instance, last)
    return 1000 * (many - one) / (dates - 1)


def one_date(workdir: Path, timeout: float) -> list[Measurement]:
    """The first report date into an empty database, then the next date on it (the daily run),
    each measured ``ONE_DATE_REPEATS`` times from scratch: single runs of about 20 s vary by
    several seconds on this machine, so the run with the median wall time is reported."""
    firsts, dailies = [], []
    for repeat in range(ONE_DATE_REPEATS):
        root = fresh(workdir / "one-date" / str(repeat))
        env = pipeline_env(root, "demo")
        first = Measurement(
            "first-date",
            f"report date {DAY_BEFORE_DEMO} into an empty database, demo data: {LOOKBACK_DAYS} "
            "days of history fetched, the dbt project parsed for a new database path",
            "",
            target_s=TARGETS["one-date"],
            dates=1,
        )
        run_pipeline(first, root, env, ["--partition", DAY_BEFORE_DEMO], timeout)
        daily = Measurement(
            "one-date",
            f"report date {DEMO_DATE} on the same database the next day: the daily run",
            "",
            target_s=TARGETS["one-date"],
            dates=1,
        )
        run_pipeline(daily, root, env, ["--partition", DEMO_DATE], timeout)
        firsts.append(first)
        dailies.append(daily)
    return [median_run(firsts), median_run(dailies)]


def median_run(runs: list[Measurement]) -> Measurement:
    """The run with the median wall time (a failed run if any failed), noting every run's."""
    failed = [run for run in runs if run.status != "success"]
    chosen = failed[0] if failed else sorted(runs, key=lambda run: run.wall_s)[len(runs) // 2]
    walls = ", ".join(f"{run.wall_s:.1f}" for run in runs)
    chosen.notes.insert(0, f"{len(runs)} runs, each from scratch: {walls} s; the median shown")
    return chosen


def backfill(name: str, workdir: Path, replay: Path, end: date, timeout: float) -> Measurement:
    default_instance = name in DEFAULT_INSTANCE
    years = BACKFILL_YEARS[DEFAULT_INSTANCE.get(name, name)]
    start = date(end.year - years + 1, 1, 1) if end.month == 12 and end.day == 31 else None
    start = start or end - timedelta(days=round(365.25 * years) - 1)
    result = Measurement(
        name,
        f"one-run backfill of report dates {start}..{end} ({years} y), whole universe, reports "
        "included, empty database"
        + (", Dagster's default instance (no dagster.yaml)" if default_instance else ""),
        "",
        target_s=TARGETS.get(name),
        dates=(end - start).days + 1,
    )
    root = fresh(workdir / name)
    env = pipeline_env(root, "replay", replay, project_instance=not default_instance)
    run_pipeline(result, root, env, ["--partition-range", f"{start}...{end}"], timeout)
    if result.status == "success" and result.reports_written < result.dates:
        result.notes.append(f"only {result.reports_written} of {result.dates} reports written")
    return result


def breadth(workdir: Path, end: date, stocks: int, years: int, timeout: float) -> Measurement:
    """dbt's breadth models over ``stocks`` x ``years`` of per-stock bars (no snapshot rows)."""
    start = date(end.year - years + 1, 1, 1)
    name = "breadth-5000x10y"
    result = Measurement(
        name,
        f"dbt build +fct_cn_breadth over {stocks:,} stocks x {years} y of A-share sessions "
        f"({start}..{end}), from per-stock bars",
        "",
        target_s=TARGETS[name],
    )
    root = fresh(workdir / name)
    database = root / "market_intel.duckdb"
    rows, session_count = write_stock_bars(database, start, end, stocks)
    result.dates = session_count
    result.notes.append(f"{rows:,} rows in raw.cn_stock_bars ({session_count} sessions)")
    env = {**os.environ, "MARKET_INTEL_DB": str(database)}
    window = ReportWindow(start, end + timedelta(days=1))
    command = dbt_command(root / "target")
    window_vars = " ".join(f"{k}={v}" for k, v in window_environment(window).items())
    result.command = f"cd dbt_project && {window_vars} dbt " + " ".join(command[1:4])
    code, result.wall_s, result.peak_rss_mb, timed_out = measure(
        command, {**env, **window_environment(window)}, DBT_PROJECT_DIR, root / "dbt.log", timeout
    )
    result.status = "timeout" if timed_out else "success" if code == 0 else "failed"
    if (root / "target" / "run_results.json").exists():
        result.dbt_models, elapsed = node_times(root / "target" / "run_results.json")
        result.run_s = elapsed
        result.notes.append(f"dbt's own elapsed time {elapsed:.1f} s (run s)")
    # The daily cost once history is built: one more report date, incremental.
    day = window_environment(ReportWindow(end, end + timedelta(days=1)))
    code, daily, _, _ = measure(
        dbt_command(root / "target-daily"),
        {**env, **day},
        DBT_PROJECT_DIR,
        root / "daily.log",
        timeout,
    )
    result.notes.append(f"then one more report date, incremental: {daily:.1f} s (exit {code})")
    return result


def dbt_command(target: Path) -> list[str]:
    """dbt build of the breadth models; the window comes from ``window_environment``."""
    return [
        DBT_EXECUTABLE,
        "build",
        "--select",
        "+fct_cn_breadth",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target),
    ]


def write_stock_bars(database: Path, start: date, end: date, stocks: int) -> tuple[int, int]:
    """Deterministic per-stock bars on every A-share session (chained closes), year by year."""
    from market_intel.universe import markets

    calendar = markets()["cn"].calendar
    # A month of sessions before the window: the 20-session turnover average has its history.
    days = list(
        sessions(calendar, start - timedelta(days=45), end + timedelta(days=1))["session_date"]
    )
    rng = np.random.default_rng(5000)
    codes = np.array([f"{n:06d}" for n in range(stocks)])
    close = rng.uniform(3, 80, stocks)
    rows = 0
    with duckdb.connect(str(database)) as conn:
        ensure_raw_schema(conn)
        for chunk in np.array_split(np.arange(len(days)), max(1, len(days) // 250)):
            moves = rng.normal(0.0002, 0.025, (len(chunk), stocks))
            moves[rng.random((len(chunk), stocks)) < 0.03] = 0.0  # unchanged (suspended, flat)
            previous = np.empty_like(moves)
            closes = np.empty_like(moves)
            for i in range(len(chunk)):
                previous[i] = close
                close = np.round(close * (1 + moves[i]), 2).clip(0.01)
                closes[i] = close
            turnover = rng.lognormal(18, 1, moves.shape).round(0)
            frame = pd.DataFrame(
                {
                    "stock_code": np.tile(codes, len(chunk)),
                    "session_date": np.repeat(np.array(days, dtype=object)[chunk], stocks),
                    "close": closes.ravel(),
                    "previous_close": previous.ravel(),
                    "volume": (turnover / closes).round(0).ravel(),
                    "turnover_cny": turnover.ravel(),
                    "source": "bench",
                    "is_fallback": False,
                    "fetched_at": pd.Timestamp("2026-01-01"),
                }
            )
            conn.register("chunk_rows", frame)
            conn.execute("INSERT INTO raw.cn_stock_bars BY NAME SELECT * FROM chunk_rows")
            conn.unregister("chunk_rows")
            rows += len(frame)
    return rows, len([d for d in days if d >= start])


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def linearity(results: dict[str, Measurement]) -> list[str]:
    """10y/1y time against 10, the cost per extra date, and the steps that grow faster."""
    one, five, ten = (results.get(f"backfill-{years}y") for years in (1, 5, 10))
    if not (one and ten and one.status == ten.status == "success"):
        return ["linearity: needs successful backfill-1y and backfill-10y runs"]
    ratio = ten.wall_s / one.wall_s
    first = (
        f"10y/1y wall time: {ratio:.2f} for {ten.dates / one.dates:.1f}x the dates (linear cost "
        "with no fixed part would be 10; below 10 means fixed costs dominate the 1-year run)"
    )
    lines = [first]
    slope = (ten.wall_s - one.wall_s) / (ten.dates - one.dates)
    fixed = one.wall_s - slope * one.dates
    lines.append(
        f"marginal cost {1000 * slope:.1f} ms per report date; fixed cost about {fixed:.1f} s"
    )
    if five and five.status == "success":
        predicted = fixed + slope * five.dates
        lines.append(
            f"5y predicted by the 1y-10y line: {predicted:.1f} s, measured {five.wall_s:.1f} s "
            f"({100 * (five.wall_s / predicted - 1):+.0f}%: near 0 means linear)"
        )
    for step, seconds in sorted(ten.steps.items(), key=lambda item: -item[1])[:8]:
        base = one.steps.get(step)
        if base:
            lines.append(
                f"  step {step}: {base:.1f} s (1y) -> {seconds:.1f} s (10y), x{seconds / base:.1f}"
            )
    return lines


def default_instance_ratios(results: dict[str, Measurement]) -> list[str]:
    """Each default-instance backfill's wall time against the project instance's."""
    lines = []
    for name, project_name in DEFAULT_INSTANCE.items():
        default, project = results.get(name), results.get(project_name)
        if not (default and project and default.status == project.status == "success"):
            continue
        ratio = default.wall_s / project.wall_s
        verdict = "met" if ratio <= DEFAULT_INSTANCE_RATIO_TARGET else "MISSED"
        lines.append(
            f"{name}: {default.wall_s:.1f} s against {project.wall_s:.1f} s with the project's "
            f"instance: {ratio:.2f}x (target at most {DEFAULT_INSTANCE_RATIO_TARGET:.0f}x: "
            f"{verdict})"
        )
    return lines


def markdown(results: list[Measurement], info: dict[str, str], command: str) -> str:
    lines = [
        f"Measured with `{command}` on {date.today().isoformat()}.",
        "",
        "| scenario | dates | wall s | run s | peak RSS MB | reports | target s | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        run = f"{r.run_s:.1f}" if r.run_s is not None else "-"
        target = f"{r.target_s:.0f}" if r.target_s else "-"
        lines.append(
            f"| {r.scenario} | {r.dates} | {r.wall_s:.1f} | {run} | {r.peak_rss_mb:.0f} | "
            f"{r.reports_written} | {target} | {r.verdict} |"
        )
    by_name = {r.scenario: r for r in results}
    if any(name in by_name for name in BACKFILL_YEARS):
        lines += ["", "Linearity:", ""] + [f"- {line}" for line in linearity(by_name)]
    ratios = default_instance_ratios(by_name)
    if ratios:
        lines += ["", "Default instance:", ""] + [f"- {line}" for line in ratios]
    for r in results:
        lines += ["", f"**{r.scenario}**: {r.description}.", ""]
        lines += [f"- {note}" for note in r.notes]
        top = sorted(r.steps.items(), key=lambda item: -item[1])[:6]
        if top:
            lines.append("- slowest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in top))
        models = list(r.dbt_models.items())[:5]
        if models:
            lines.append(
                "- slowest dbt nodes: "
                + ", ".join(f"{k.split('.')[-1]} {v:.1f} s" for k, v in models)
            )
    lines += ["", "Machine:", ""] + [f"- {key}: {value}" for key, value in info.items()]
    return "\n".join(lines) + "\n"


def write_docs(text: str) -> None:
    """Replace the results section of docs/benchmarks.md (between its markers)."""
    docs = DOCS.read_text()
    head, _, rest = docs.partition(RESULTS_START)
    _, _, tail = rest.partition(RESULTS_END)
    DOCS.write_text(f"{head}{RESULTS_START}\n{text}{RESULTS_END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description="market-intel benchmarks (docs/benchmarks.md)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "data" / "bench")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--stocks", type=int, default=5000)
    parser.add_argument("--no-reference", action="store_true", help="generated series only")
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    command = "make bench" + (f' BENCH_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    info = machine()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: list[Measurement] = []
    replay = args.workdir / "replay"
    if any(name in BACKFILL_YEARS or name in DEFAULT_INSTANCE for name in chosen):
        first = date(args.end.year - 10, 1, 1) - timedelta(days=LOOKBACK_DAYS + 31)
        reference = None if args.no_reference else REFERENCE_DATA
        fresh(replay)
        summary = generate(replay, first, args.end, reference)
        real = sum(summary.real_bars.values())
        print(
            f"replay data {first}..{args.end}: {sum(summary.rows.values()):,} rows, {real:,} real bars"
        )
        info["replay data"] = (
            f"{first}..{args.end}, real series: {'no' if reference is None else 'yes'}"
        )
        for move in unconfirmed_moves(replay):
            print(f"WARNING: the quality gate blocks this real move until confirmed: {move}")
    cost = event_cost_ms(args.workdir)
    info["Dagster event write (probe)"] = f"{cost:.2f} ms per event of a one-run backfill"
    for name in chosen:
        print(f"== {name}", flush=True)
        if name == "one-date":
            measured = one_date(args.workdir, args.timeout)
        elif name in BACKFILL_YEARS or name in DEFAULT_INSTANCE:
            measured = [backfill(name, args.workdir, replay, args.end, args.timeout)]
        elif name == "postgres-1y":  # Dagster's storage in PostgreSQL (bench/postgres.py)
            from bench.postgres import postgres_1y

            measured = postgres_1y(args.workdir, args.end, args.timeout)
        else:
            measured = [breadth(args.workdir, args.end, args.stocks, 10, args.timeout)]
        for result in measured:
            if result.dagster_events:
                share = result.dagster_events * cost / 1000
                result.notes.append(
                    f"{result.dagster_events:,} Dagster events in the run's log: about "
                    f"{share:.0f} s of bookkeeping at {cost:.2f} ms each (planned events included)"
                )
            if result.dated_events and result.dates:
                per_date = result.dated_events / result.dates
                per_run = result.dagster_events - result.dated_events
                result.notes.append(
                    f"events per report date: {per_date:.1f} (the events naming a report date, "
                    f"{result.dated_events:,}, over {result.dates} dates); {per_run:,} per run"
                )
            print(
                f"   {result.scenario}: {result.status}, {result.wall_s:.1f} s, "
                f"{result.peak_rss_mb:.0f} MB; {result.verdict}"
            )
        results.extend(measured)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = markdown(results, info, command)
    print()
    print(text)
    (args.workdir / "results.md").write_text(text)
    (args.workdir / "results.json").write_text(
        json.dumps(
            {"machine": info, "results": [asdict(r) for r in results]}, indent=2, default=str
        )
    )
    if args.write_docs:
        write_docs(text)
    return 0 if all(r.status == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
