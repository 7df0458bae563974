"""The log lines operators rely on (bot/infra/telemetry.py): JSON, one object per line with time, level,
logger and message, or plain text."""

from __future__ import annotations

import json
import logging
import logging.config
from contextlib import contextmanager

from bot.infra import telemetry


@contextmanager
def logging_configured(config: dict):
    """Apply a logging config, then put the touched loggers back as they were (other tests log too)."""
    names = list(config["loggers"])
    saved = {name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
             for name in names for logger in [logging.getLogger(name)]}
    logging.config.dictConfig(config)
    try:
        yield
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled


def test_json_logs_are_one_object_per_line_with_time_level_logger_and_message(capsys):
    capsys.readouterr()
    with logging_configured(telemetry.logging_config("json")):  # its handler writes to the captured stderr
        telemetry.log.info("model %s loaded", "v0042", extra={"conversation_id": "abc123"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            telemetry.log.exception("unhandled error")
        logging.getLogger("uvicorn.error").warning("shutting down")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    assert len(lines) == 3
    info, error, uvicorn = lines
    assert {"time", "level", "logger", "message"} <= set(info)
    assert (info["level"], info["logger"], info["message"]) == ("INFO", "distilbot", "model v0042 loaded")
    assert info["conversation_id"] == "abc123" and info["time"][:2] == "20"
    assert (error["level"], error["message"]) == ("ERROR", "unhandled error")
    assert "RuntimeError: boom" in error["exc_info"]
    assert (uvicorn["level"], uvicorn["logger"], uvicorn["message"]) == ("WARNING", "uvicorn.error", "shutting down")


def test_text_logs_are_plain_lines(capsys):
    capsys.readouterr()
    with logging_configured(telemetry.logging_config("text")):
        telemetry.log.info("plain line")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO distilbot plain line")
