import json
import logging
import sys
from datetime import UTC, datetime

from shared.logs import JsonFormatter, OneLineRetries


def format_record(**extra) -> dict:
    record = logging.LogRecord("storefront.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_log_line_is_json_with_extras():
    entry = format_record(status=200, route="/api/products")
    assert entry["msg"] == "hello world"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "storefront.test"
    assert (entry["status"], entry["route"]) == (200, "/api/products")
    assert entry["ts"].endswith("+00:00")


def test_unencodable_extra_is_logged_as_text():
    assert format_record(error=ValueError("bad"))["error"] == "bad"


def test_exception_is_included():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in entry["exc"]


def test_the_time_is_written_as_isoformat_writes_it_in_utc():
    for created in (1_764_633_331.0, 1_764_633_331.123, 1_764_633_331.9999996, 1_764_633_332.5, 0.25):
        record = logging.makeLogRecord({"msg": "m", "created": created})
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(JsonFormatter().format(record))["ts"] == expected


def test_asyncpgs_reconnect_retries_are_one_line_and_its_other_warnings_keep_their_stack():
    records = []
    for message in ("Failed to restore the pool connection floor; retrying", "something else"):
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError:
            record = logging.LogRecord(
                "asyncpg.pool", logging.WARNING, __file__, 1, message, None, sys.exc_info()
            )
        assert OneLineRetries().filter(record)
        records.append(json.loads(JsonFormatter().format(record)))
    retry, other = records
    assert retry["msg"] == (
        "Failed to restore the pool connection floor; retrying:"
        " ConnectionRefusedError(111, 'Connect call failed')"
    )
    assert "exc" not in retry
    assert "Traceback" in other["exc"]
