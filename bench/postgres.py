"""A throwaway PostgreSQL server, a Dagster instance stored in it, and the ``postgres-1y`` bench.

docs/scaling.md moves Dagster's storage to Postgres for a deployment. This module is the one
place that starts a local server for it, used by ``tests/test_postgres.py`` and by the
``postgres-1y`` scenario of ``make bench``: ``initdb`` into a temporary folder, ``pg_ctl start``
on a free loopback port (its unix socket in the same folder), ``createdb``; stopped and deleted
on exit. The binaries are the OS package's (``postgresql``; Debian puts them in
``/usr/lib/postgresql/<version>/bin``, which ``.ci/run`` adds to PATH). PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` user (or ``nobody``) via
``runuser`` or ``su``.

The scenario: a one-year one-run backfill on the Postgres instance alone, then again with a
daily run of a later date started beside it; wall time, run time and events of each run.
"""

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from market_intel.settings import PROJECT_ROOT

INSTANCE_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
# The instance keys `storage: postgres` replaces (docs/scaling.md); every other key is kept.
STORAGE_KEYS = {"storage", "run_storage", "event_log_storage", "schedule_storage"}
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
UNPRIVILEGED_USERS = ("postgres", "nobody")
DATABASE = "dagster"
# SQLAlchemy 2.1 (dagster's) reads a bare `postgresql://` as psycopg 3; dagster-postgres brings
# psycopg2, so the scheme names it.
SCHEME = "postgresql+psycopg2"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server, trusting local connections of its superuser ``dagster``."""

    port: int
    root: Path

    @property
    def postgres_db(self) -> dict:
        """The instance's ``storage: postgres: postgres_db:`` block (docs/scaling.md)."""
        return {
            "hostname": "127.0.0.1",
            "port": self.port,
            "username": DATABASE,
            "db_name": DATABASE,
            "scheme": SCHEME,
        }


def binaries_dir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``createdb``: PATH first, then Debian's newest."""
    found = shutil.which("pg_ctl")
    if found:
        folder = Path(found).resolve().parent
        if all((folder / name).exists() for name in ("initdb", "createdb")):
            return folder
    versions = sorted(
        (path for path in DEBIAN_BINARIES.glob("*/bin") if (path / "pg_ctl").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    raise PostgresUnavailable(
        "no PostgreSQL binaries (pg_ctl, initdb) on PATH or in /usr/lib/postgresql/*/bin: "
        "install the OS package `postgresql` (.ci/run does)"
    )


def run_as() -> tuple[list[str], str | None]:
    """The command prefix that runs the server's commands, and the user it runs them as (None:
    this user). initdb and postgres refuse root, so root hands them to an unprivileged user."""
    if os.geteuid() != 0:
        return [], None
    users = [name for name in UNPRIVILEGED_USERS if _user_exists(name)]
    if not users:
        raise PostgresUnavailable("running as root and no postgres or nobody user to run initdb")
    if shutil.which("runuser"):
        return ["runuser", "-u", users[0], "--"], users[0]
    if shutil.which("su"):
        return ["su", users[0], "-s", "/bin/sh", "-c"], users[0]
    raise PostgresUnavailable("running as root, and neither runuser nor su to run initdb as a user")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server(durable: bool = True) -> Iterator[PostgresServer]:
    """A fresh server for the duration of the block, deleted afterwards.

    ``durable=False`` turns fsync off (tests: nothing to keep); the bench keeps the defaults a
    production server has. Raises PostgresUnavailable when it cannot run here.
    """
    folder = binaries_dir()
    prefix, user = run_as()
    # Its own folder under the system temp dir: an unprivileged user must reach it, which a
    # pytest tmp_path of root (mode 0700 parents) would not allow.
    root = Path(tempfile.mkdtemp(prefix="market-intel-postgres-"))
    if user:
        account = pwd.getpwnam(user)
        os.chown(root, account.pw_uid, account.pw_gid)

    def command(*arguments: str) -> None:
        line = [str(folder / arguments[0]), *arguments[1:]]
        full = [*prefix, shlex.join(line)] if prefix[:1] == ["su"] else [*prefix, *line]
        done = subprocess.run(
            full, cwd=root, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{arguments[0]} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    port = free_port()
    data = root / "data"
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    started = False
    try:
        command("initdb", "-D", str(data), "-U", DATABASE, "-A", "trust", "-E", "UTF8",
                "--locale=C", "--no-sync")  # fmt: skip
        command("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-o", options,
                "-w", "-t", str(START_TIMEOUT_S), "start")  # fmt: skip
        started = True
        command("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", DATABASE, DATABASE)
        yield PostgresServer(port, root)
    finally:
        if started:
            command("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def instance_config(server: PostgresServer) -> dict:
    """The project's instance (pool limits, run monitoring) with its storage in ``server``."""
    project = yaml.safe_load(INSTANCE_YAML.read_text())
    kept = {key: value for key, value in project.items() if key not in STORAGE_KEYS}
    return {**kept, "storage": {"postgres": {"postgres_db": server.postgres_db}}}


def write_instance(home: Path, server: PostgresServer) -> Path:
    """A DAGSTER_HOME whose dagster.yaml stores runs, events and schedules in ``server``."""
    home.mkdir(parents=True, exist_ok=True)
    config = instance_config(server)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


# --- the bench scenario (bench/run.py registers it as postgres-1y) ---------------------------

DAILY_AFTER_DAYS = 6  # the concurrent daily run's report date: this many days after the range
BATCH = "1000"  # DAGSTER_EVENT_BATCH_SIZE of the batched variants (docs/scaling.md)
# name, a daily run beside the backfill, DAGSTER_EVENT_BATCH_SIZE (None: Dagster's default)
VARIANTS = (
    ("postgres-1y", False, BATCH),
    ("postgres-1y+daily", True, BATCH),
)


def postgres_1y(workdir: Path, end: date, timeout: float) -> list:
    """A one-year one-run backfill up to ``end`` on a Postgres instance with Dagster's event
    batching on: alone, then beside a daily run of ``end`` + DAILY_AFTER_DAYS started at the same
    time. Each on an empty database and a fresh server, over generated replay data (real series
    where ../shared/reference-data has them), as ``backfill-1y``."""
    from bench.generate import REFERENCE_DATA, generate
    from bench.run import LOOKBACK_DAYS, fresh, pipeline_env

    start = date(end.year, 1, 1)
    try:
        binaries_dir(), run_as()
    except PostgresUnavailable as reason:
        skipped = measurement("postgres-1y", f"report dates {start}..{end} in one run", BATCH)
        skipped.status = "skipped"
        skipped.notes.append(str(reason))
        return [skipped]
    daily = end + timedelta(days=DAILY_AFTER_DAYS)
    replay = fresh(workdir / "postgres-replay")
    generate(replay, start - timedelta(days=LOOKBACK_DAYS + 31), daily, REFERENCE_DATA)
    results = []
    for name, concurrent, batch in VARIANTS:
        root = fresh(workdir / name)
        env = pipeline_env(root, "replay", replay)
        env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
        env.update({"DAGSTER_EVENT_BATCH_SIZE": batch} if batch else {})
        runs = {"backfill": ["--partition-range", f"{start}...{end}"]}
        if concurrent:
            runs["daily"] = ["--partition", daily.isoformat()]
        with postgres_server() as server:
            home = write_instance(Path(env["DAGSTER_HOME"]), server)
            for label, (wall, code, log) in run_together(root, env, runs, timeout).items():
                what = (
                    f"report dates {start}..{end} in one run"
                    if label == "backfill"
                    else f"report date {daily}, started with the backfill"
                )
                result = measurement(f"{name} {label}" if concurrent else name, what, batch)
                result.command = "dagster asset materialize -m pipelines.definitions "
                result.command += "--select '*' " + " ".join(runs[label])
                result.status, result.wall_s = ("success" if code == 0 else "failed"), wall
                result.dates = (end - start).days + 1 if label == "backfill" else 1
                read_run(result, home, runs[label])
                result.reports_written = len(list((root / "reports").glob("????-??-??.json")))
                if code != 0:
                    result.notes.append(f"exit {code}; log {log}")
                results.append(result)
    return results


def measurement(scenario: str, what: str, batch: str | None):
    from bench.run import Measurement

    batching = f"DAGSTER_EVENT_BATCH_SIZE={batch}" if batch else "no event batching"
    description = f"{what}, Dagster storage in PostgreSQL ({batching}), empty database"
    return Measurement(scenario, description, "")


def run_together(
    root: Path, env: dict, runs: dict[str, list[str]], timeout: float
) -> dict[str, tuple[float, int, Path]]:
    """Start every CLI run at once; (wall seconds, exit code, log) of each."""
    from bench.run import DAGSTER

    base = [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", "*"]
    started = time.perf_counter()
    processes = {}
    for label, arguments in runs.items():
        log = root / f"{label}.log"
        with open(log, "w") as out:
            command = [*base, *arguments]
            process = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
            )
            processes[label] = (process, log)
    finished = {}
    while len(finished) < len(processes):  # each run's own wall time, whichever ends first
        for label, (process, log) in processes.items():
            if label in finished:
                continue
            if time.perf_counter() - started > timeout:
                process.kill()
            code = process.poll()
            if code is not None:
                finished[label] = (time.perf_counter() - started, code, log)
        time.sleep(0.2)
    return finished


def read_run(result, home: Path, arguments: list[str]) -> None:
    """Run time, events and step times of the run started with ``arguments``."""
    from dagster import DagsterInstance

    from bench.run import dbt_model_times, record_run

    with DagsterInstance.from_config(str(home)) as instance:
        run = next(
            run
            for run in instance.get_runs()
            if run_partitions(run.tags) == arguments[1].replace("...", "..")
        )
        result.notes.append(f"run status {run.status.value}")
        record_run(result, instance.all_logs(run.run_id))
        if result.run_s is not None:
            startup = result.wall_s - result.run_s
            result.notes.append(
                f"{startup:.0f} s from the CLI's start to the run's start event and after its end "
                "(mostly the run's creation: its planned events)"
            )
        result.dbt_models, _ = dbt_model_times(run.run_id)


def run_partitions(tags: dict[str, str]) -> str:
    """A run's report dates as ``A..B`` (a range) or ``A`` (one date), from its tags."""
    from pipelines.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG

    if RANGE_START_TAG in tags:
        return f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
    return tags.get(PARTITION_TAG, "")
