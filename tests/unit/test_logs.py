"""The log lines' rules (shared/logs.py), on records built here: no handler, no I/O."""
import json
import logging
import sys

from shared import logs


def _exc_info():
    try:
        raise ValueError("boom")
    except ValueError:
        return sys.exc_info()


def test_a_refusal_is_logged_without_a_traceback_and_a_fault_with_one():
    formatter, keep = logs.JsonFormatter(), logs.RefusalsWithoutTraceback()
    expected = logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1,
                                 "(expected) error handling worker %s: %s", ("w", "an API token is required"),
                                 _exc_info())
    fault = logging.LogRecord("nameko.containers", logging.ERROR, __file__, 1, "error handling worker %s: %s",
                              ("w", "boom"), _exc_info())
    assert keep.filter(expected) and keep.filter(fault)
    line = json.loads(formatter.format(expected))
    assert "exc" not in line and line["msg"].endswith("an API token is required")
    assert "ValueError: boom" in json.loads(formatter.format(fault))["exc"]
