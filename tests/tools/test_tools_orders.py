"""OrderStore: first-run demo data, path rules, CSV/JSON import, the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sonicwire.server.tools.orders import (
    ENV_ORDERS_DB,
    OrderImportError,
    OrderStatus,
    OrderStore,
    default_db_path,
    main,
    parse_orders,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CSV_HEADER = "order_id,status,carrier,tracking_number,eta,items\n"


def store_at(path: Path, **kw: object) -> OrderStore:
    return OrderStore(path, now=lambda: NOW, **kw)  # type: ignore[arg-type]


def test_first_run_creates_the_file_with_demo_orders(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "dir" / "orders.db"
    store = store_at(db)
    assert not db.exists()
    assert [o.order_id for o in store.list_orders()] == ["1001", "1002", "1003", "1004", "1005"]
    assert db.exists()
    statuses = {o.status for o in store.list_orders()}
    assert {OrderStatus.SHIPPED, OrderStatus.PROCESSING, OrderStatus.DELIVERED} <= statuses
    order = store.get("1002")
    assert order is not None and order.carrier is None and order.eta == date(2026, 3, 7)
    assert order.updated_at == NOW


def test_demo_data_is_only_written_once(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    json_file = tmp_path / "orders.json"
    json_file.write_text(json.dumps([{"order_id": "X1", "status": "processing"}]))
    assert store_at(db).import_file(json_file, replace=True) == 1
    # A new process (a new store object) must not bring the demo orders back.
    assert [o.order_id for o in store_at(db).list_orders()] == ["X1"]


def test_no_demo_data(tmp_path: Path) -> None:
    assert store_at(tmp_path / "o.db", demo_data=False).count() == 0


def test_path_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_ORDERS_DB, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "sonicwire" / "orders.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "sonicwire" / "orders.db"
    monkeypatch.setenv(ENV_ORDERS_DB, str(tmp_path / "env.db"))
    assert OrderStore().path == tmp_path / "env.db"
    assert OrderStore(tmp_path / "arg.db").path == tmp_path / "arg.db"


def test_csv_import_upserts(tmp_path: Path) -> None:
    store = store_at(tmp_path / "orders.db")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        CSV_HEADER + "1001,Delivered,UPS,1Z999AA10123456784,2026-03-01,Wireless headphones\n"
        "#2001 ,processing,,,,Desk lamp\n",
        encoding="utf-8",
    )
    assert store.import_file(csv_file) == 2
    assert store.count() == 6  # five demo orders, one of them updated, plus one new
    updated = store.get("1001")
    assert updated is not None and updated.status is OrderStatus.DELIVERED
    new = store.get("2001")
    assert new is not None and new.carrier is None and new.eta is None
    assert new.items == "Desk lamp"


def test_json_import_forms(tmp_path: Path) -> None:
    store = store_at(tmp_path / "orders.db", demo_data=False)
    a = tmp_path / "a.json"
    a.write_text(json.dumps([{"order_id": 3001, "status": "shipped", "eta": None}]))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"orders": [{"order_id": "3002", "status": "out for delivery"}]}))
    assert store.import_file(a) == 1 and store.import_file(b) == 1
    order = store.get("3002")
    assert order is not None and order.status is OrderStatus.OUT_FOR_DELIVERY


@pytest.mark.parametrize(
    ("text", "fmt", "fragment"),
    [
        (CSV_HEADER + "1,lost,,,,\n", "csv", "line 2: status 'lost'"),
        (CSV_HEADER + "1,shipped,,,tomorrow,\n", "csv", "not a YYYY-MM-DD"),
        (CSV_HEADER + ",shipped,,,,\n", "csv", "order_id is missing"),
        ("order_id,status,colour\n1,shipped,red\n", "csv", "unknown field"),
        (CSV_HEADER + "1,shipped,,,,,extra\n", "csv", "too many columns"),
        (CSV_HEADER + "1,shipped,,,,\n1,processing,,,,\n", "csv", "appears twice"),
        ("", "csv", "header row"),
        ("{not json", "json", "invalid JSON"),
        ('{"rows": []}', "json", "expected a list"),
        ("[1]", "json", "item 0: expected an object"),
        ('[{"order_id": "1", "status": "shipped", "items": ["a"]}]', "json", "items must be text"),
    ],
)
def test_bad_files_are_rejected(text: str, fmt: str, fragment: str) -> None:
    with pytest.raises(OrderImportError, match=fragment):
        parse_orders(text, fmt)


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    store = store_at(tmp_path / "orders.db")
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV_HEADER + "9001,shipped,,,,\n9002,teleported,,,,\n", encoding="utf-8")
    with pytest.raises(OrderImportError, match="line 3"):
        store.import_file(bad, replace=True)
    assert store.count() == 5 and store.get("9001") is None
    with pytest.raises(OrderImportError, match=r"\.csv or \.json"):
        store.import_file(tmp_path / "orders.xlsx")


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(CSV_HEADER + "5001,shipped,DHL,JD1,2026-03-04,Tent\n", encoding="utf-8")
    assert main(["--db", db, "import", str(csv_file), "--replace"]) == 0
    assert "imported 1 orders" in capsys.readouterr().out
    assert main(["show", "5001", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["carrier"] == "DHL"
    assert main(["--db", db, "show", "1001"]) == 1  # demo order replaced
    assert main(["--db", db, "list"]) == 0
    assert [json.loads(line)["order_id"] for line in capsys.readouterr().out.splitlines()] == [
        "5001"
    ]
    assert main(["--db", db, "import", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps([{"order_id": "7", "status": "processing"}]))
    env = {**os.environ, ENV_ORDERS_DB: str(tmp_path / "m.db")}
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "sonicwire.server.tools.orders",
            "import",
            str(orders),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 1 orders" in done.stdout and "(6 in total)" in done.stdout
    assert done.stderr == ""
