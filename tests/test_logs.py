"""The JSON log lines operators parse: built-in fields are never replaced by a caller's extras."""

from __future__ import annotations

import json
import logging
import sys

from hitl_chatops.bot.logs import JsonFormatter


def test_extras_named_like_built_in_fields_are_kept_beside_them() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.makeLogRecord({"name": "hitl_chatops.test", "levelname": "INFO", "msg": "posted"})
    record.exc_info = exc_info
    extras = {"ts": "1700000000.000001", "level": "x", "logger": "x", "exc_type": "x", "traceback": "x"}
    extras |= {"extra_ts": "taken", "slack_token": "xoxb-secret", "request_id": "r1"}
    record.__dict__.update(extras)

    line = json.loads(JsonFormatter().format(record))

    assert line["ts"].startswith("20") and line["ts"].endswith("+00:00")
    assert (line["level"], line["logger"], line["msg"]) == ("info", "hitl_chatops.test", "posted")
    assert line["exc_type"] == "RuntimeError" and "boom" in line["traceback"]
    assert line["extra_ts"] == "taken" and line["extra_extra_ts"] == "1700000000.000001"
    assert {line[f"extra_{key}"] for key in ("level", "logger", "exc_type", "traceback")} == {"x"}
    assert line["slack_token"] == "[redacted]" and line["request_id"] == "r1"


def test_an_extra_named_traceback_never_passes_for_one() -> None:
    record = logging.makeLogRecord({"name": "hitl_chatops.test", "levelname": "WARNING", "msg": "refused"})
    record.__dict__["traceback"] = "forged"
    line = json.loads(JsonFormatter().format(record))
    assert "traceback" not in line and line["extra_traceback"] == "forged"
