"""Structured logging: one JSON object per line, carrying the `extra` fields callers pass."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "setup_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRET_WORDS = ("token", "secret", "password", "authorization")
_BUILT_IN = frozenset({"ts", "level", "logger", "msg", "exc_type", "traceback"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `msg` (and `exc_type`, `traceback`), then the extras.

    The built-in fields always win: an extra with one of their names is kept as `extra_<name>`
    (a Slack message's `ts` must not replace the time of the line); every other extra keeps its
    name. Extras whose names sound secret are redacted.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        extras = [(k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")]
        for key, value in sorted(extras, key=lambda item: item[0] in _BUILT_IN):  # the colliding ones last
            name = key
            while name in entry or name in _BUILT_IN:
                name = f"extra_{name}"
            entry[name] = "[redacted]" if any(w in key.lower() for w in _SECRET_WORDS) else value
        return json.dumps(entry, default=str)


def setup_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
