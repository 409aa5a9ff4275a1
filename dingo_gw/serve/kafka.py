"""Optional Kafka consumer (SCiMMA / igwn-alert via ``hop-client``); only if ``hop`` is importable.

Notices in the LVK alert JSON format (``superevent_id``, ``event.time`` ISO UTC,
``event.instruments``; retractions are ignored) become service alerts: the strain is then found
by GPS time in the service's data folders. Messages that are already service alerts (with an
``alert_id``) are submitted as they are. Not exercised by the tests (no broker offline).
"""

from __future__ import annotations

import json
import logging
import threading

from dingo_gw.errors import ConfigError
from dingo_gw.serve.alert import AlertError

logger = logging.getLogger(__name__)


def available() -> bool:
    try:
        import hop  # noqa: F401
    except ImportError:
        return False
    return True


def notice_to_alert(notice: dict) -> dict | None:
    """A service alert from an LVK notice (None for retractions or notices without an event)."""
    if "alert_id" in notice:
        return notice
    event = notice.get("event") or {}
    if notice.get("alert_type") == "RETRACTION" or not event.get("time"):
        return None
    from astropy.time import Time

    return {"alert_id": str(notice["superevent_id"]), "gps": float(Time(event["time"], scale="utc").gps),
            "detectors": list(event.get("instruments") or [])}


class KafkaConsumer:
    """Reads ``url`` (kafka://broker/topic) with hop-client and submits each notice."""

    def __init__(self, url: str, submit):
        if not available():
            raise ConfigError("kafka consumer configured but hop-client is not installed (pip install hop-client)")
        self.url, self.submit = url, submit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        from hop import stream

        with stream.open(self.url, "r") as messages:
            for message in messages:
                if self._stop.is_set():
                    break
                content = getattr(message, "content", message)
                try:
                    notice = json.loads(content) if isinstance(content, (bytes, str)) else dict(content)
                    alert = notice_to_alert(notice)
                    if alert is not None:
                        self.submit(alert)
                except (AlertError, ValueError, KeyError, TypeError) as e:
                    logger.warning("kafka notice rejected: %s", e)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dingo_serve-kafka", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
