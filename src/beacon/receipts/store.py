"""Reading, exporting and erasing consent receipts in ClickHouse.

:class:`ReceiptStore` is the ClickHouse-backed
:class:`~mypharm_consent.receipts.ReceiptProvider` the preferences page uses,
and the engine behind ``beacon consent``. Writing receipts is not its job:
:class:`~beacon.receipts.ReceiptRecorder` appends them to the spool.

Erasure is a small state machine kept in ``receipt_erasures``, one row per
change (a ``ReplacingMergeTree`` keyed by a SHA-256 digest of the consent id,
newest ``version`` wins)::

    none ──request──▶ requested ──cancel (before due_at)──▶ cancelled ──request──▶ …
                          │
                          └──purge (at or after due_at)──▶ done

Purging deletes the receipts with a lightweight ``DELETE``, then records
``done`` with the plain consent id blanked out, then removes the older rows
that still hold it. Every step can be repeated: a purge interrupted anywhere
leaves the erasure ``requested`` (or ``done`` with a leftover row) and the
next :meth:`ReceiptStore.purge_due` finishes it. Once done, only the digest
is kept, so a second request can be answered without keeping the id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from beacon.exceptions import StoreError
from beacon.receipts.rows import (
    BANNER_VERSIONS_TABLE,
    RECEIPT_COLUMNS,
    RECEIPTS_TABLE,
    tsv_datetime,
)
from beacon.store import Store
from mypharm_consent.receipts import (
    ConsentReceipt,
    ErasureAlreadyRequested,
    ErasureDeadlinePassed,
    ErasureNotPending,
    ErasureStatus,
    ReceiptError,
    UnknownConsentId,
    is_consent_id,
    iso_utc,
)

__all__ = [
    "DEFAULT_ERASURE_GRACE",
    "ERASURES_TABLE",
    "ERASURE_COLUMNS",
    "EXPORT_FORMAT",
    "BannerVersion",
    "PurgeReport",
    "ReceiptStore",
    "ReceiptStoreUnavailable",
    "consent_digest",
]

#: The table holding erasure requests.
ERASURES_TABLE = "receipt_erasures"
#: Columns of ``receipt_erasures``, in insertion order.
ERASURE_COLUMNS: tuple[str, ...] = (
    "consent_digest",
    "consent_id",
    "state",
    "requested_at",
    "due_at",
    "done_at",
    "version",
)
#: How long a visitor can change their mind after asking for erasure.
DEFAULT_ERASURE_GRACE = timedelta(hours=24)
#: How long after an erasure receipts of the erased id that arrive late (a
#: spool replayed after an outage) are still looked for and deleted.
LATE_ARRIVAL_WINDOW = timedelta(days=7)
#: Identifies the JSON document :meth:`ReceiptStore.export` produces.
EXPORT_FORMAT = "mypharm-consent.receipts/1"


class ReceiptStoreUnavailable(ReceiptError):
    """ClickHouse could not be reached or refused the query; nothing was changed."""


def consent_digest(consent_id: str) -> str:
    """The lowercase hex SHA-256 of ``consent_id``: what is kept once it is erased."""
    return hashlib.sha256(consent_id.encode("utf-8")).hexdigest()


def _unavailable(exc: Exception, what: str, consent_id: str) -> ReceiptStoreUnavailable:
    text = str(exc)
    if "UNKNOWN_TABLE" in text or "does not exist" in text or "doesn't exist" in text:
        text = "the receipt tables do not exist: run `beacon init-db` first"
    return ReceiptStoreUnavailable(f"{what}: {text}", consent_id=consent_id)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BannerVersion:
    """The banner a hash stands for, as it was rendered, and when it was first seen."""

    banner_hash: str
    language: str
    html: str
    first_seen: datetime


@dataclass(frozen=True)
class PurgeReport:
    """What one :meth:`ReceiptStore.purge_due` run did.

    ``erased`` counts the consent ids whose erasure was completed;
    ``late_receipts`` the consent ids for which receipts that arrived after
    their erasure were deleted.
    """

    erased: int
    late_receipts: int


@dataclass(frozen=True)
class _ErasureRow:
    consent_id: str
    state: str
    requested_at: datetime
    due_at: datetime
    done_at: datetime | None
    version: int

    def status(self) -> ErasureStatus:
        state = self.state if self.state in ("requested", "cancelled", "done") else "none"
        return ErasureStatus(
            state=state,  # type: ignore[arg-type]
            requested_at=self.requested_at,
            due_at=self.due_at,
            done_at=self.done_at,
        )


class ReceiptStore:
    """Receipts of one ClickHouse database: list, export, erase, purge.

    ``store`` is the beacon :class:`~beacon.store.Store` (embedded chDB or a
    server) whose database holds the receipt tables.
    ``clock`` returns the current time (tests move it past the grace period);
    ``erasure_grace`` is how long an erasure can be cancelled (24 hours).
    Every method is synchronous: asynchronous code calls it from a worker
    thread. ClickHouse failures surface as :class:`ReceiptStoreUnavailable`.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = _now,
        erasure_grace: timedelta = DEFAULT_ERASURE_GRACE,
    ) -> None:
        if erasure_grace < timedelta(0):
            raise ValueError("erasure_grace must not be negative")
        self.store = store
        self.clock = clock
        self.erasure_grace = erasure_grace

    def _table(self, name: str) -> str:
        return f"`{self.store.database}`.`{name}`"

    def _now(self) -> datetime:
        return _utc(self.clock())

    def _receipts_target(self) -> str:
        # Mutations cannot go through a Distributed table: on a cluster they
        # run on every node's local table.
        if self.store.cluster:
            return (
                f"`{self.store.database}`.`{RECEIPTS_TABLE}_local`"
                f" ON CLUSTER `{self.store.cluster}`"
            )
        return self._table(RECEIPTS_TABLE)

    def _delete_receipts(self, where: str, parameters: dict[str, Any], consent_id: str) -> None:
        self._command(
            f"DELETE FROM {self._receipts_target()} WHERE {where}", parameters, consent_id
        )

    def _rewrite_deleted(self) -> None:
        # A lightweight DELETE only masks rows until their part is merged;
        # rewriting the masked parts now makes the erasure physical too.
        # The erasures table is replicated as a whole: one replica's mutation
        # reaches the others, so it needs no ON CLUSTER.
        settings: dict[str, Any] = {} if self.store.cluster else {"mutations_sync": 1}
        for table in (self._receipts_target(), self._table(ERASURES_TABLE)):
            try:
                self.store.command(f"ALTER TABLE {table} APPLY DELETED MASK", None, settings)
            except (StoreError, ClickHouseError, OSError) as exc:
                raise _unavailable(exc, "the erased rows could not be rewritten", "") from exc

    def _query(self, sql: str, parameters: dict[str, Any], consent_id: str = "") -> list[Any]:
        try:
            return self.store.query_rows(sql, parameters)
        except (StoreError, ClickHouseError, OSError) as exc:
            raise _unavailable(exc, "the receipt store could not be queried", consent_id) from exc

    def _command(self, sql: str, parameters: dict[str, Any], consent_id: str = "") -> None:
        try:
            self.store.command(sql, parameters)
        except (StoreError, ClickHouseError, OSError) as exc:
            raise _unavailable(exc, "the receipt store could not be changed", consent_id) from exc

    @staticmethod
    def _checked(consent_id: str) -> str:
        if not is_consent_id(consent_id):
            raise UnknownConsentId(
                "this is not a consent id: expected 8 to 64 letters, digits, '-' or '_'",
                consent_id=str(consent_id)[:64],
            )
        return consent_id

    def set_retention(self, months: int) -> None:
        """Keep receipts ``months`` months (default five years), then let TTL drop them.

        Shortening it drops older receipts at the next merge: proof of
        consent is needed as long as a claim can be brought, so choose it
        with the site's legal counsel.
        """
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 1200:
            raise ValueError("the receipt retention must be a whole number of months, 1 to 1200")
        self._command(
            f"ALTER TABLE {self._receipts_target()}"
            f" MODIFY TTL toDateTime(ts) + INTERVAL {months} MONTH DELETE",
            {},
        )

    # -- reading ---------------------------------------------------------

    def history(self, consent_id: str, limit: int | None = None) -> list[ConsentReceipt]:
        """The receipts of ``consent_id``, oldest first (empty when there are none).

        With ``limit``, only the ``limit`` most recent ones (the preferences
        page shows a bounded list; the export holds everything).
        """
        self._checked(consent_id)
        if limit is not None and limit < 1:
            raise ValueError("limit must be a positive number of receipts")
        newest_first = limit is not None
        rows = self._query(
            f"SELECT {', '.join(RECEIPT_COLUMNS)} FROM {self._table(RECEIPTS_TABLE)}"
            " WHERE consent_id = {cid:String}"
            + (" ORDER BY ts DESC LIMIT {limit:UInt32}" if newest_first else " ORDER BY ts"),
            {"cid": consent_id, "limit": limit or 0},
            consent_id,
        )
        if newest_first:
            rows.reverse()
        return [
            ConsentReceipt(
                consent_id=row[0],
                time=_utc(row[1]),
                action=row[2],
                granted=tuple(row[3]),
                refused=tuple(row[4]),
                policy_revision=int(row[5]),
                banner_hash=row[6],
                language=row[7],
                source=row[8],
                device_class=row[9],
            )
            for row in rows
        ]

    def banner_versions(self, hashes: Sequence[str]) -> dict[str, BannerVersion]:
        """The stored banner of each hash in ``hashes`` that has one."""
        if not hashes:
            return {}
        rows = self._query(
            "SELECT banner_hash, argMin(language, first_seen), argMin(html, first_seen),"
            f" min(first_seen) FROM {self._table(BANNER_VERSIONS_TABLE)}"
            " WHERE banner_hash IN {hashes:Array(String)} GROUP BY banner_hash",
            {"hashes": sorted(set(hashes))},
        )
        return {
            row[0]: BannerVersion(
                banner_hash=row[0], language=row[1], html=row[2], first_seen=_utc(row[3])
            )
            for row in rows
        }

    def export_document(self, consent_id: str) -> dict[str, Any]:
        """The consent history of ``consent_id`` as a JSON-ready mapping.

        It holds every receipt, the banner each one answered (its rendered
        HTML, so the wording can be shown), and where erasure stands. Raises
        :class:`~mypharm_consent.receipts.UnknownConsentId` when nothing at
        all is stored under the id.
        """
        receipts = self.history(consent_id)
        erasure = self.erasure_status(consent_id)
        if not receipts and erasure.state == "none":
            raise UnknownConsentId(
                "no receipt is stored under this consent id", consent_id=consent_id
            )
        banners = self.banner_versions([r.banner_hash for r in receipts])
        return {
            "format": EXPORT_FORMAT,
            "consent_id": consent_id,
            "exported_at": iso_utc(self._now()),
            "receipts": [r.to_json() for r in receipts],
            "banners": {
                h: {
                    "language": b.language,
                    "first_seen": iso_utc(b.first_seen),
                    "html": b.html,
                }
                for h, b in sorted(banners.items())
            },
            "erasure": erasure.to_json(),
        }

    def export(self, consent_id: str) -> bytes:
        """:meth:`export_document` as indented UTF-8 JSON."""
        document = self.export_document(consent_id)
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    # -- erasure ---------------------------------------------------------

    def _erasure_row(self, consent_id: str) -> _ErasureRow | None:
        rows = self._query(
            "SELECT consent_id, state, requested_at, due_at, done_at, version"
            f" FROM {self._table(ERASURES_TABLE)} WHERE consent_digest = {{d:String}}"
            " ORDER BY version DESC LIMIT 1",
            {"d": consent_digest(consent_id)},
            consent_id,
        )
        if not rows:
            return None
        cid, state, requested_at, due_at, done_at, version = rows[0]
        return _ErasureRow(
            consent_id=cid,
            state=state,
            requested_at=_utc(requested_at),
            due_at=_utc(due_at),
            done_at=_utc(done_at) if done_at is not None else None,
            version=int(version),
        )

    def _has_receipts(self, consent_id: str) -> bool:
        rows = self._query(
            f"SELECT count() FROM {self._table(RECEIPTS_TABLE)} WHERE consent_id = {{cid:String}}",
            {"cid": consent_id},
            consent_id,
        )
        return bool(rows and rows[0][0])

    def _write_erasure(
        self,
        consent_id: str,
        *,
        state: str,
        requested_at: datetime,
        due_at: datetime,
        done_at: datetime | None,
        version: int,
    ) -> None:
        # Once done, only the digest is kept: the erased id is not stored again.
        kept_id = "" if state == "done" else consent_id
        line = "\t".join(
            (
                consent_digest(consent_id),
                kept_id,
                state,
                tsv_datetime(requested_at),
                tsv_datetime(due_at),
                tsv_datetime(done_at) if done_at else "\\N",
                str(version),
            )
        )
        try:
            # Every row is a deliberate change of state: never drop one as a duplicate.
            self.store.raw_insert(
                ERASURES_TABLE,
                ERASURE_COLUMNS,
                (line + "\n").encode(),
                settings={"insert_deduplicate": 0},
            )
        except (StoreError, ClickHouseError, OSError) as exc:
            raise _unavailable(exc, "the erasure could not be recorded", consent_id) from exc

    def erasure_status(self, consent_id: str) -> ErasureStatus:
        """Where the erasure of ``consent_id`` stands (``none`` if never asked)."""
        row = self._erasure_row(self._checked(consent_id))
        return row.status() if row else ErasureStatus("none")

    def request_erasure(self, consent_id: str) -> ErasureStatus:
        """Schedule the erasure of every receipt of ``consent_id`` after the grace period.

        Raises :class:`~mypharm_consent.receipts.ErasureAlreadyRequested` when
        an erasure is already scheduled or done, and
        :class:`~mypharm_consent.receipts.UnknownConsentId` when nothing is
        stored under the id. A cancelled erasure can be requested again.
        """
        row = self._erasure_row(self._checked(consent_id))
        self._refuse_repeat(consent_id, row)
        if row is None and not self._has_receipts(consent_id):
            raise UnknownConsentId(
                "no receipt is stored under this consent id: there is nothing to erase",
                consent_id=consent_id,
            )
        now = self._now()
        due = now + self.erasure_grace
        self._write_erasure(
            consent_id,
            state="requested",
            requested_at=now,
            due_at=due,
            done_at=None,
            version=(row.version if row else 0) + 1,
        )
        return ErasureStatus("requested", requested_at=now, due_at=due)

    @staticmethod
    def _refuse_repeat(consent_id: str, row: _ErasureRow | None) -> None:
        if row is None:
            return
        status = row.status()
        if row.state == "requested":
            raise ErasureAlreadyRequested(
                f"erasure was already requested on {iso_utc(row.requested_at)};"
                f" it is due on {iso_utc(row.due_at)}",
                consent_id=consent_id,
                status=status,
            )
        if row.state == "done":
            raise ErasureAlreadyRequested(
                f"these receipts were already erased on {iso_utc(row.done_at or row.due_at)}",
                consent_id=consent_id,
                status=status,
            )

    def cancel_erasure(self, consent_id: str) -> ErasureStatus:
        """Cancel the scheduled erasure of ``consent_id`` while the grace period runs.

        Raises :class:`~mypharm_consent.receipts.ErasureDeadlinePassed` once
        the grace period is over (even if the purge has not run yet) and
        :class:`~mypharm_consent.receipts.ErasureNotPending` when no erasure
        is scheduled.
        """
        row = self._erasure_row(self._checked(consent_id))
        now = self._now()
        if row is None or row.state == "cancelled":
            raise ErasureNotPending(
                "no erasure is scheduled for this consent id: there is nothing to cancel",
                consent_id=consent_id,
            )
        status = row.status()
        if row.state == "done" or now >= row.due_at:
            raise ErasureDeadlinePassed(
                "the grace period ended on "
                f"{iso_utc(row.due_at)}: the erasure can no longer be cancelled",
                consent_id=consent_id,
                status=status,
            )
        self._write_erasure(
            consent_id,
            state="cancelled",
            requested_at=row.requested_at,
            due_at=row.due_at,
            done_at=None,
            version=row.version + 1,
        )
        return ErasureStatus("cancelled", requested_at=row.requested_at, due_at=row.due_at)

    def erase_now(self, consent_id: str) -> ErasureStatus:
        """Erase every receipt of ``consent_id`` at once, without a grace period.

        The erasure is first recorded as due now, so that if anything fails
        midway :meth:`purge_due` completes it. Same errors as
        :meth:`request_erasure`, except that an erasure still in its grace
        period is carried out instead of refused.
        """
        row = self._erasure_row(self._checked(consent_id))
        if row is not None and row.state == "done":
            self._refuse_repeat(consent_id, row)
        if row is None and not self._has_receipts(consent_id):
            raise UnknownConsentId(
                "no receipt is stored under this consent id: there is nothing to erase",
                consent_id=consent_id,
            )
        now = self._now()
        requested_at = row.requested_at if row and row.state == "requested" else now
        version = (row.version if row else 0) + 1
        self._write_erasure(
            consent_id,
            state="requested",
            requested_at=requested_at,
            due_at=now,
            done_at=None,
            version=version,
        )
        status = self._complete(consent_id, requested_at, now, version, now)
        self._rewrite_deleted()
        return status

    def _complete(
        self,
        consent_id: str,
        requested_at: datetime,
        due_at: datetime,
        version: int,
        now: datetime,
    ) -> ErasureStatus:
        self._delete_receipts("consent_id = {cid:String}", {"cid": consent_id}, consent_id)
        self._write_erasure(
            consent_id,
            state="done",
            requested_at=requested_at,
            due_at=due_at,
            done_at=now,
            version=version + 1,
        )
        self._forget_plain_id(consent_digest(consent_id))
        return ErasureStatus("done", requested_at=requested_at, due_at=due_at, done_at=now)

    def _forget_plain_id(self, digest: str) -> None:
        self._command(
            f"DELETE FROM {self._table(ERASURES_TABLE)}"
            " WHERE consent_digest = {d:String} AND consent_id != ''",
            {"d": digest},
        )

    def purge_due(self) -> PurgeReport:
        """Carry out every erasure whose grace period is over; safe to run any time.

        Also finishes erasures a previous run left half-way, and deletes
        receipts of recently erased ids that reached ClickHouse after their
        erasure (a spool replayed late). Run by ``beacon consent purge-due``
        and periodically by the application.
        """
        now = self._now()
        latest = (
            "SELECT consent_digest, argMax(consent_id, version) AS cid,"
            " argMax(state, version) AS st, argMax(requested_at, version) AS req,"
            " argMax(due_at, version) AS due, argMax(done_at, version) AS done,"
            " max(version) AS ver, countIf(consent_id != '') AS plain"
            f" FROM {self._table(ERASURES_TABLE)} GROUP BY consent_digest"
        )
        due_rows = self._query(
            f"SELECT cid, req, due, ver FROM ({latest})"
            " WHERE st = 'requested' AND due <= {now:DateTime64(3, 'UTC')}",
            {"now": now},
        )
        for cid, requested_at, due_at, version in due_rows:
            self._complete(cid, _utc(requested_at), _utc(due_at), int(version), now)
        leftovers = self._query(
            f"SELECT consent_digest FROM ({latest}) WHERE st = 'done' AND plain > 0", {}
        )
        for (digest,) in leftovers:
            self._forget_plain_id(digest)
        report = PurgeReport(erased=len(due_rows), late_receipts=self._sweep_late(now))
        if report.erased or report.late_receipts or leftovers or self._has_masked_rows():
            self._rewrite_deleted()
        return report

    def _has_masked_rows(self) -> bool:
        # Rows an earlier run deleted but could not rewrite away.
        rows = self._query(
            "SELECT count() FROM system.parts WHERE database = {db:String} AND active"
            " AND has_lightweight_delete AND table IN {tables:Array(String)}",
            {
                "db": self.store.database,
                "tables": [RECEIPTS_TABLE, f"{RECEIPTS_TABLE}_local", ERASURES_TABLE],
            },
        )
        return bool(rows and rows[0][0])

    def _sweep_late(self, now: datetime) -> int:
        recent = self._query(
            "SELECT consent_digest, max(done_at) FROM"
            f" {self._table(ERASURES_TABLE)} WHERE state = 'done'"
            " AND done_at >= {since:DateTime64(3, 'UTC')} GROUP BY consent_digest",
            {"since": now - LATE_ARRIVAL_WINDOW},
        )
        if not recent:
            return 0
        done_at = {digest: _utc(moment) for digest, moment in recent}
        candidates = self._query(
            "SELECT consent_id, lower(hex(SHA256(consent_id))) AS digest, min(ts)"
            f" FROM {self._table(RECEIPTS_TABLE)} WHERE digest IN {{digests:Array(String)}}"
            " GROUP BY consent_id, digest",
            {"digests": sorted(done_at)},
        )
        late = [
            (cid, done_at[digest])
            for cid, digest, oldest in candidates
            if _utc(oldest) <= done_at[digest]
        ]
        for cid, done in late:
            self._delete_receipts(
                "consent_id = {cid:String} AND ts <= {done:DateTime64(3, 'UTC')}",
                {"cid": cid, "done": done},
                cid,
            )
        return len(late)
