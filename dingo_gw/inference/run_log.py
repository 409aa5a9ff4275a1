"""Logging helpers of an analysis: step timings, and warnings held back while a later step may
replace the result they are about."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Sequence


@contextlib.contextmanager
def timed_step(timings: dict, name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - t0


class HeldWarnings(logging.Filter):
    """Keeps the WARNING records of the loggers it is attached to, logged as INFO meanwhile."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            self.records.append(logging.makeLogRecord(record.__dict__))
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


@contextlib.contextmanager
def hold_warnings(enabled: bool, *names: str):
    """Within the block, log the WARNINGs of the loggers ``names`` as INFO and collect them (list of
    records; :func:`release_warnings` logs them as WARNINGs after all). The network proposal's warnings
    (failed proposal, heavy tails) are held while a refinement may still follow and replace its result."""
    held = HeldWarnings()
    loggers = [logging.getLogger(n) for n in names] if enabled else []
    for lg in loggers:
        lg.addFilter(held)
    try:
        yield held.records
    finally:
        for lg in loggers:
            lg.removeFilter(held)


def release_warnings(records: Sequence[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)
