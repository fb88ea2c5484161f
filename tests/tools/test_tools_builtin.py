"""Built-in tools through the runner: get_date_time with time zones, track_order on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sonicwire.server.testing.tools import OutcomeRecorder
from sonicwire.server.tools import ToolInvocation, ToolRegistry, ToolRunner, ToolStatus
from sonicwire.server.tools.builtin import builtin_tools
from sonicwire.server.tools.orders import OrderStore

# A Thursday in winter, and a Wednesday in summer (DST in Europe and North America).
WINTER = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 23, 30, 0, tzinfo=UTC)


async def call(
    tmp_path: Path, name: str, args: dict[str, Any], *, now: datetime = WINTER, **kw: Any
) -> tuple[ToolStatus, Any]:
    store = OrderStore(tmp_path / "orders.db", now=lambda: WINTER)
    registry = ToolRegistry(builtin_tools(order_store=store, now=lambda: now, **kw))
    outcomes = OutcomeRecorder()
    async with ToolRunner(registry, on_outcome=outcomes) as runner:
        runner.start(ToolInvocation("c1", name, json.dumps(args)))
        outcome = await outcomes.wait_for("c1")
    return outcome.status, json.loads(outcome.result_json)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (WINTER, "Asia/Tokyo", ("2026-01-15", "21:00", "Thursday", "+09:00", "JST")),
        (WINTER, "America/New_York", ("2026-01-15", "07:00", "Thursday", "-05:00", "EST")),
        (SUMMER, "America/New_York", ("2026-07-01", "19:30", "Wednesday", "-04:00", "EDT")),
        (SUMMER, "Europe/Paris", ("2026-07-02", "01:30", "Thursday", "+02:00", "CEST")),
        (WINTER, "Asia/Kolkata", ("2026-01-15", "17:30", "Thursday", "+05:30", "IST")),
        (WINTER, "europe/paris", ("2026-01-15", "13:00", "Thursday", "+01:00", "CET")),
    ],
)
async def test_date_time_in_a_time_zone(
    tmp_path: Path, now: datetime, zone: str, expected: tuple[str, ...]
) -> None:
    status, result = await call(tmp_path, "get_date_time", {"timezone": zone}, now=now)
    assert status is ToolStatus.OK
    got = tuple(result[k] for k in ("date", "time", "weekday", "utc_offset", "abbreviation"))
    assert got == expected
    assert result["timezone"].lower() == zone.lower()
    assert datetime.fromisoformat(result["datetime"]) == now


async def test_date_time_default_zone(tmp_path: Path) -> None:
    status, result = await call(tmp_path, "get_date_time", {})
    assert status is ToolStatus.OK
    assert (result["timezone"], result["time"], result["utc_offset"]) == ("UTC", "12:00", "+00:00")
    _, result = await call(tmp_path, "get_date_time", {}, default_timezone="Australia/Sydney")
    assert (result["timezone"], result["time"]) == ("Australia/Sydney", "23:00")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime"])
async def test_invalid_time_zone_is_a_tool_error(tmp_path: Path, zone: str) -> None:
    status, result = await call(tmp_path, "get_date_time", {"timezone": zone})
    assert status is ToolStatus.ERROR
    assert result["error"]["type"] == "invalid_timezone"
    assert "IANA" in result["error"]["message"]


async def test_track_order_demo_data(tmp_path: Path) -> None:
    status, result = await call(tmp_path, "track_order", {"order_id": "1001"})
    assert status is ToolStatus.OK
    assert result == {
        "found": True,
        "order_id": "1001",
        "status": "shipped",
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "eta": "2026-01-17",
        "items": "Wireless headphones",
    }
    _, delivered = await call(tmp_path, "track_order", {"order_id": " #1003 "})
    assert delivered["status"] == "delivered" and delivered["delivered_on"] == "2026-01-14"


async def test_track_order_not_found_and_imported(tmp_path: Path) -> None:
    status, result = await call(tmp_path, "track_order", {"order_id": "9999"})
    assert status is ToolStatus.OK
    assert result["found"] is False and "9999" in result["message"]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "order_id,status,carrier,tracking_number,eta,items\n"
        "A-77,out_for_delivery,La Poste,LP123,2026-01-15,Cheese\n",
        encoding="utf-8",
    )
    OrderStore(tmp_path / "orders.db").import_file(csv_file)
    _, result = await call(tmp_path, "track_order", {"order_id": "a-77"})
    assert result["found"] is True and result["carrier"] == "La Poste"


async def test_track_order_requires_an_id(tmp_path: Path) -> None:
    status, result = await call(tmp_path, "track_order", {})
    assert status is ToolStatus.INVALID_ARGUMENTS
    status, result = await call(tmp_path, "track_order", {"order_id": "  "})
    assert status is ToolStatus.ERROR and result["error"]["type"] == "invalid_order_id"
