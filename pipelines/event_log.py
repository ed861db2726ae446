"""The one private Dagster seam of market-intel: Dagster's SQLite event log, writing batches.

Dagster's default SQLite event log builds a new SQLAlchemy engine for every write and commits
every event on its own: 7-45 ms an event on this machine, depending on its load. A one-run
backfill records about 20 materialization events per report date (docs/benchmarks.md), so over
two years that alone is minutes. Dagster already hands the events of one output over as a batch
when ``DAGSTER_EVENT_BATCH_SIZE`` is set; its SQLite storage then stores them one by one. This
storage keeps one engine per database file and writes a batch of asset events in one
transaction per file: the same rows, about 0.5 ms an event. No supported option does this for
SQLite (Postgres, ``dagster-postgres``, writes a batch in one insert: docs/scaling.md).

It also plans each asset check once per run instead of once per report date of a range run
(``_store_asset_check_evaluation_planned``): the checks have no partitions and report one
result, which completes that one row.

Both override private methods of ``SqliteEventLogStorage``, tested against one Dagster version
(``TESTED_DAGSTER``): tests/test_event_log.py fails on any other version, and checks that the
rows recorded are exactly Dagster's own. ``.dagster_home/dagster.yaml`` selects it; everything
else is Dagster's own SQLite storage, with the same files, so an existing instance keeps its
history, and an instance without it is only slower.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import attrgetter
from typing import Any

from dagster import DagsterEventType, EventLogEntry, Field, IntSource, StringSource
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# The Dagster release whose private SqliteEventLogStorage methods this module was checked
# against (tests/test_event_log.py): upgrading Dagster means checking them again.
TESTED_DAGSTER = "1.13.27"
DEFAULT_BATCH_SIZE = 1000
# The asset events whose rows are written in batches; any other event is stored as Dagster does.
BATCHED_EVENTS = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
    }
)


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps event logs for this ``DAGSTER_HOME``."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError(
            "BatchedSqliteEventLogStorage needs DAGSTER_HOME (or base_dir in dagster.yaml)"
        )
    return os.path.join(home, "history", "runs", "")


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage that writes Dagster's event batches in one transaction.

    Setting ``event_batch_size`` turns on Dagster's event batching (``DAGSTER_EVENT_BATCH_SIZE``)
    in every process that loads the instance, unless the environment sets it already.
    """

    def __init__(
        self,
        base_dir: str | None = None,
        event_batch_size: int = DEFAULT_BATCH_SIZE,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._engines: dict[str, Engine] = {}
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(event_batch_size))
        super().__init__(base_dir or default_base_dir(), inst_data)

    @classmethod
    def config_type(cls) -> Mapping[str, Field]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "event_batch_size": Field(
                IntSource, is_required=False, default_value=DEFAULT_BATCH_SIZE
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "BatchedSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's connection, from an engine kept per shard instead of one built per write."""
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """One planned row per check and run: the row the check's one result completes.

        In a range run Dagster plans a row per report date for every check (it takes the run's
        partitions whatever the check's own, here none): 119 checks x 730 dates are 87,000
        rows of 1.5 KB for two years, about 100 s before the run starts, left planned for ever.
        """
        planned = event.get_dagster_event().asset_check_planned_data
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert().values(
                    asset_key=planned.asset_key.to_string(),
                    check_name=planned.check_name,
                    partition=None,
                    run_id=event.run_id,
                    execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                    evaluation_event=serialize_value(event),
                    evaluation_event_timestamp=self._event_insert_timestamp(event),
                    evaluation_event_storage_id=event_id,
                )
            )

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store runs of asset events of one run together; anything else as Dagster does."""
        for batchable, group in groupby(events, key=_is_batchable_asset_event):
            if not batchable:
                for event in group:
                    self.store_event(event)
                continue
            for _, run_events in groupby(group, key=attrgetter("run_id")):
                self._store_asset_events(list(run_events))

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        """What ``store_event`` does for each asset event, in one transaction per database."""
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            event_ids = list(inserted.scalars())
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset's summary row keeps the latest event of each kind: write only that one.
            latest = {
                (event.dagster_event.asset_key, event.dagster_event_type): (event, event_id)
                for event, event_id in zip(events, event_ids)
            }
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)


def _is_batchable_asset_event(event: EventLogEntry) -> bool:
    return bool(
        event.is_dagster_event
        and event.dagster_event_type in BATCHED_EVENTS
        and event.get_dagster_event().asset_key
    )
