"""The order store behind ``track_order``: a small SQLite database.

Where it lives, first match wins: the ``path`` argument (``--orders-db``), the environment
variable ``SONICWIRE_ORDERS_DB``, ``$XDG_DATA_HOME/sonicwire/orders.db``, and
``~/.local/share/sonicwire/orders.db``. The first time a database file is opened, the schema is
created and a handful of demo orders (``1001`` to ``1005``, from the data file
``data/demo_orders.json`` next to this module) are written, so the assistant has something to
find out of the box.

Loading real orders (CSV with a header row, or JSON: a list of objects or ``{"orders": [...]}``)::

    python -m sonicwire.server.tools.orders import orders.csv            # upsert by order_id
    python -m sonicwire.server.tools.orders import orders.json --replace # drop everything first
    python -m sonicwire.server.tools.orders --db /srv/orders.db list
    python -m sonicwire.server.tools.orders show 1001

Columns / keys: ``order_id`` and ``status`` (required; one of :class:`OrderStatus`),
``carrier``, ``tracking_number``, ``eta`` (``YYYY-MM-DD``: the expected delivery date, or the
delivery date once delivered), ``items`` (a short description). An import is all-or-nothing.

SQLite calls block; the async tool handler runs them with ``asyncio.to_thread``. Each operation
opens its own connection, so the store is safe to share between threads and processes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import enum
import io
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_ORDERS_DB",
    "Order",
    "OrderImportError",
    "OrderStatus",
    "OrderStore",
    "default_db_path",
    "main",
    "normalize_order_id",
    "parse_orders",
]

ENV_ORDERS_DB = "SONICWIRE_ORDERS_DB"
_SCHEMA_VERSION = 1
_FIELDS = ("order_id", "status", "carrier", "tracking_number", "eta", "items")
_MAX_ORDER_ID = 64
_DEMO_FILE = "data/demo_orders.json"


class OrderStatus(enum.StrEnum):
    PROCESSING = "processing"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class OrderImportError(ValueError):
    """A file of orders could not be imported; the message names the file and record."""


def normalize_order_id(raw: str) -> str:
    """The canonical form of an order id: no spaces, no leading ``#``, upper case.

    Speech recognisers and models write "# 1001" or "a-17 b"; the store keys on "1001", "A-17B".
    """
    return "".join(raw.split()).lstrip("#").upper()


@dataclass(frozen=True)
class Order:
    """One order as the store keeps it."""

    order_id: str
    status: OrderStatus
    carrier: str | None = None
    tracking_number: str | None = None
    eta: date | None = None
    items: str = ""
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``track_order`` gives the model.

        A delivered order reports ``delivered_on`` instead of ``eta``.
        """
        out: dict[str, Any] = {"order_id": self.order_id, "status": self.status.value}
        if self.carrier:
            out["carrier"] = self.carrier
        if self.tracking_number:
            out["tracking_number"] = self.tracking_number
        if self.eta is not None:
            key = "delivered_on" if self.status is OrderStatus.DELIVERED else "eta"
            out[key] = self.eta.isoformat()
        if self.items:
            out["items"] = self.items
        return out


def default_db_path() -> Path:
    """``$SONICWIRE_ORDERS_DB``, else the per-user data directory (XDG)."""
    env = os.environ.get(ENV_ORDERS_DB, "").strip()
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "sonicwire" / "orders.db"


def _demo_orders(today: date, now: datetime) -> list[Order]:
    """The demo orders of ``data/demo_orders.json`` (data, not code: read only when a new
    database is seeded), their ``eta_in_days`` made dates relative to ``today``."""
    text = resources.files("sonicwire.server.tools").joinpath(_DEMO_FILE).read_text("utf-8")
    orders = []
    for n, record in enumerate(json.loads(text)["orders"]):
        record = dict(record)
        days = record.pop("eta_in_days", None)
        if days is not None:
            record["eta"] = (today + timedelta(days=days)).isoformat()
        order = _order_from_record(record, f"{_DEMO_FILE} order {n + 1}")
        orders.append(dataclasses.replace(order, updated_at=now))
    return orders


def _order_from_record(record: dict[str, Any], where: str) -> Order:
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise OrderImportError(f"{where}: unknown field(s) {unknown}; known: {list(_FIELDS)}")

    def text(key: str) -> str | None:
        value = record.get(key)
        if value is None:
            return None
        if not isinstance(value, str | int):
            raise OrderImportError(f"{where}: {key} must be text, got {type(value).__name__}")
        return str(value).strip() or None

    raw_id = text("order_id")
    order_id = normalize_order_id(raw_id) if raw_id else ""
    if not order_id or len(order_id) > _MAX_ORDER_ID:
        raise OrderImportError(f"{where}: order_id is missing or longer than {_MAX_ORDER_ID}")
    raw_status = (text("status") or "").lower().replace(" ", "_")
    try:
        status = OrderStatus(raw_status)
    except ValueError:
        raise OrderImportError(
            f"{where}: status {record.get('status')!r} is not one of "
            f"{[s.value for s in OrderStatus]}"
        ) from None
    raw_eta = text("eta")
    try:
        eta = date.fromisoformat(raw_eta) if raw_eta else None
    except ValueError:
        raise OrderImportError(f"{where}: eta {raw_eta!r} is not a YYYY-MM-DD date") from None
    return Order(
        order_id=order_id,
        status=status,
        carrier=text("carrier"),
        tracking_number=text("tracking_number"),
        eta=eta,
        items=text("items") or "",
    )


def parse_orders(data: str, fmt: str, *, source: str = "input") -> list[Order]:
    """Parse CSV (``fmt="csv"``) or JSON (``fmt="json"``) text into orders.

    Raises:
        OrderImportError: malformed file, bad record, or an order id given twice.
    """
    records: list[tuple[str, dict[str, Any]]] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(data))
        if not reader.fieldnames:
            raise OrderImportError(f"{source}: empty CSV file (a header row is required)")
        for row in reader:
            if None in row:
                raise OrderImportError(f"{source} line {reader.line_num}: too many columns")
            fields = {(k or "").strip(): v for k, v in row.items()}
            records.append((f"{source} line {reader.line_num}", fields))
    elif fmt == "json":
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise OrderImportError(f"{source}: invalid JSON: {exc}") from exc
        if isinstance(parsed, dict) and isinstance(parsed.get("orders"), list):
            parsed = parsed["orders"]
        if not isinstance(parsed, list):
            raise OrderImportError(f'{source}: expected a list of orders or {{"orders": [...]}}')
        for index, item in enumerate(parsed):
            if not isinstance(item, dict):
                raise OrderImportError(f"{source} item {index}: expected an object")
            records.append((f"{source} item {index}", item))
    else:
        raise OrderImportError(f"{source}: unknown format {fmt!r} (use csv or json)")
    orders: list[Order] = []
    seen: set[str] = set()
    for where, record in records:
        order = _order_from_record(record, where)
        if order.order_id in seen:
            raise OrderImportError(f"{where}: order {order.order_id!r} appears twice")
        seen.add(order.order_id)
        orders.append(order)
    return orders


class OrderStore:
    """Orders in a SQLite file, created with demo data on first use.

    Args:
        path: the database file; ``None`` resolves :func:`default_db_path` now.
        demo_data: seed the demo orders when the file is created.
        now: the wall clock (UTC) for ``updated_at`` and the demo dates; for tests.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        demo_data: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._path = Path(path).expanduser() if path is not None else default_db_path()
        self._demo_data = demo_data
        self._now = now
        self._ready = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.ensure()
        with closing(self._open()) as conn:
            yield conn

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode; writes use explicit BEGIN IMMEDIATE so that two processes seeding
        # or importing at once serialise instead of interleaving.
        return sqlite3.connect(self._path, timeout=10.0, isolation_level=None)

    def ensure(self) -> None:
        """Create the directory, the schema and (first time only) the demo orders.

        Idempotent and cheap after the first call; every other method calls it.

        Raises:
            sqlite3.Error, OSError: the file cannot be created or is not a database.
        """
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._open()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (version,) = conn.execute("PRAGMA user_version").fetchone()
                    if version == 0:
                        conn.execute(
                            "CREATE TABLE IF NOT EXISTS orders ("
                            " order_id TEXT PRIMARY KEY,"
                            " status TEXT NOT NULL,"
                            " carrier TEXT,"
                            " tracking_number TEXT,"
                            " eta TEXT,"
                            " items TEXT NOT NULL DEFAULT '',"
                            " updated_at TEXT NOT NULL)"
                        )
                        if self._demo_data:
                            now = self._now()
                            self._write(conn, _demo_orders(now.date(), now))
                        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            self._ready = True

    def _write(self, conn: sqlite3.Connection, orders: Iterable[Order]) -> int:
        stamp = self._now().isoformat(timespec="seconds")
        rows = [
            (
                o.order_id,
                o.status.value,
                o.carrier,
                o.tracking_number,
                o.eta.isoformat() if o.eta else None,
                o.items,
                (o.updated_at.isoformat(timespec="seconds") if o.updated_at else stamp),
            )
            for o in orders
        ]
        conn.executemany(
            "INSERT INTO orders (order_id, status, carrier, tracking_number, eta, items,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(order_id) DO UPDATE SET status = excluded.status,"
            " carrier = excluded.carrier, tracking_number = excluded.tracking_number,"
            " eta = excluded.eta, items = excluded.items, updated_at = excluded.updated_at",
            rows,
        )
        return len(rows)

    @staticmethod
    def _row(row: Sequence[Any]) -> Order:
        order_id, status, carrier, tracking, eta, items, updated = row
        return Order(
            order_id=order_id,
            status=OrderStatus(status),
            carrier=carrier,
            tracking_number=tracking,
            eta=date.fromisoformat(eta) if eta else None,
            items=items,
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )

    def get(self, order_id: str) -> Order | None:
        """The order with this id (normalised, see :func:`normalize_order_id`), or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT order_id, status, carrier, tracking_number, eta, items, updated_at"
                " FROM orders WHERE order_id = ?",
                (normalize_order_id(order_id),),
            ).fetchone()
        return self._row(row) if row else None

    async def aget(self, order_id: str) -> Order | None:
        """:meth:`get` in a worker thread, for async handlers."""
        return await asyncio.to_thread(self.get, order_id)

    def list_orders(self, limit: int | None = None) -> list[Order]:
        """All orders by id (at most ``limit``)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT order_id, status, carrier, tracking_number, eta, items, updated_at"
                " FROM orders ORDER BY order_id LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [self._row(r) for r in rows]

    def count(self) -> int:
        with self._connect() as conn:
            (n,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
        return int(n)

    def upsert(self, orders: Iterable[Order], *, replace: bool = False) -> int:
        """Insert or update orders by id in one transaction; ``replace`` deletes all first.

        Returns:
            How many orders were written.
        """
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    conn.execute("DELETE FROM orders")
                n = self._write(conn, orders)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return n

    def import_file(self, path: str | Path, *, replace: bool = False) -> int:
        """Import a ``.csv`` or ``.json`` file (see the module docstring); all-or-nothing.

        Raises:
            OrderImportError: unknown extension, unreadable file or bad record.
        """
        file = Path(path)
        fmt = file.suffix.lower().lstrip(".")
        if fmt not in ("csv", "json"):
            raise OrderImportError(f"{file}: the file name must end in .csv or .json")
        try:
            data = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise OrderImportError(f"{file}: cannot read: {exc}") from exc
        return self.upsert(parse_orders(data, fmt, source=str(file)), replace=replace)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sonicwire.server.tools.orders``: import, list and show orders."""
    db_help = f"database file (default: ${ENV_ORDERS_DB} or {default_db_path()})"
    # --db is accepted before or after the sub-command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    parser = argparse.ArgumentParser(
        prog="python -m sonicwire.server.tools.orders",
        description="Manage the SQLite order store behind the track_order tool.",
    )
    parser.add_argument("--db", default=None, help=db_help)
    sub = parser.add_subparsers(dest="command", required=True)
    p_import = sub.add_parser(
        "import", parents=[common], help="import orders from a .csv or .json file"
    )
    p_import.add_argument("file", help="a .csv file with a header row, or a .json file")
    p_import.add_argument(
        "--replace", action="store_true", help="delete every existing order (demo data too) first"
    )
    p_list = sub.add_parser("list", parents=[common], help="print orders as JSON lines")
    p_list.add_argument("--limit", type=int)
    p_show = sub.add_parser("show", parents=[common], help="print one order as JSON")
    p_show.add_argument("order_id")
    sub.add_parser("path", parents=[common], help="print the database file in use")
    args = parser.parse_args(argv)

    store = OrderStore(args.db)
    try:
        match args.command:
            case "import":
                n = store.import_file(args.file, replace=args.replace)
                print(f"imported {n} orders into {store.path} ({store.count()} in total)")
            case "list":
                for listed in store.list_orders(args.limit):
                    print(json.dumps(listed.to_dict()))
            case "show":
                order = store.get(args.order_id)
                if order is None:
                    print(f"no order {normalize_order_id(args.order_id)!r}", file=sys.stderr)
                    return 1
                print(json.dumps(order.to_dict(), indent=2))
            case "path":
                print(store.path)
    except (OrderImportError, sqlite3.Error, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
