"""The queues, live: visible, in flight, delayed, and the age of the oldest message, without receiving any.

Counts are SQS's own (``GetQueueAttributes``). Receiving a message to look at it would
raise its receive count toward the dead-letter queue, so the age of the oldest message
comes from where each backend keeps it without touching the queue:

* AWS: CloudWatch's ``ApproximateAgeOfOldestMessage`` (``GetMetricData``, one-minute
  points; read at most once a minute per queue: $0.01 per 1,000 metrics, so an open
  console costs $0.0012 an hour instead of $0.07 if it were read every second);
* ``make run`` on moto: the runner's moto server answers ``GET /_inqueue/sqs/oldest``
  from its own queue model (``inqueue_local.motoserver``): every message, in flight and
  delayed included, by the time SQS received it;
* ``make run BACKEND=localstack``: LocalStack's developer endpoint ``/_aws/sqs/messages``
  (``ShowInvisible``, ``ShowDelayed``), which lists a queue's messages without setting a
  receive count or a visibility (read at most every 5 s: it returns every message);
* any other endpoint: unknown (shown as such).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
MOTO_OLDEST_PATH = "/_inqueue/sqs/oldest"
LOCALSTACK_MESSAGES_PATH = "/_aws/sqs/messages"


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str  # "events" or "dead letters"
    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None  # None: empty, or not known on this backend
    oldest_from: str  # where the age came from: "CloudWatch", "moto's queue model", ... or "unknown"

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "visible": self.visible,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
            "oldest_age_seconds": self.oldest_age_seconds,
            "oldest_from": self.oldest_from,
        }


class OldestAge(Protocol):
    """The age in seconds of a queue's oldest message (None when empty or not known), without receiving it."""

    source: str

    def __call__(self, queue_url: str) -> float | None: ...


class Unknown:
    source = "unknown on this backend"

    def __call__(self, queue_url: str) -> float | None:
        return None


class Cached:
    """An ``OldestAge`` read at most once per ``seconds`` per queue."""

    def __init__(self, inner: OldestAge, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self.seconds = seconds
        self.clock = clock
        self.source = inner.source
        self._kept: dict[str, tuple[float, float | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, queue_url: str) -> float | None:
        now = self.clock()
        with self._lock:
            kept = self._kept.get(queue_url)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        value = self.inner(queue_url)
        with self._lock:
            self._kept[queue_url] = (now, value)
        return value


class CloudWatchOldest:
    source = "CloudWatch ApproximateAgeOfOldestMessage"

    def __init__(self, cloudwatch: Any, clock: Callable[[], float] = time.time):
        self.cloudwatch = cloudwatch
        self.clock = clock

    def __call__(self, queue_url: str) -> float | None:
        end = datetime.fromtimestamp(self.clock(), UTC)
        answer = self.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "oldest",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": queue_url.rstrip("/").rsplit("/", 1)[-1]}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=end - timedelta(minutes=10),
            EndTime=end,
            ScanBy="TimestampDescending",
        )
        results = answer.get("MetricDataResults") or [{}]
        values = results[0].get("Values") or []
        return float(values[0]) if values else None


Fetch = Callable[[str], bytes]


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the local backend's own endpoint
        data: bytes = answer.read()
        return data


class MotoOldest:
    """The runner's moto server: the oldest message's age from moto's own queue model (``inqueue_local.motoserver``)."""

    source = "moto's queue model (make run)"

    def __init__(
        self, endpoint: str, fetch: Fetch = http_get, clock: Callable[[], float] = time.time, region: str = "us-east-1"
    ):
        self.endpoint = endpoint.rstrip("/")
        self.fetch = fetch
        self.clock = clock
        self.region = region

    def __call__(self, queue_url: str) -> float | None:
        query = urllib.parse.urlencode({"QueueUrl": queue_url, "Region": self.region})
        answer = json.loads(self.fetch(f"{self.endpoint}{MOTO_OLDEST_PATH}?{query}"))
        sent = answer.get("oldest_sent_ms")
        return max(self.clock() - int(sent) / 1000, 0.0) if sent is not None else None


class LocalStackOldest:
    """LocalStack's developer endpoint, which lists a queue's messages without receiving them."""

    source = "LocalStack's /_aws/sqs/messages"

    def __init__(self, endpoint: str, fetch: Fetch = http_get, clock: Callable[[], float] = time.time):
        self.endpoint = endpoint.rstrip("/")
        self.fetch = fetch
        self.clock = clock

    def __call__(self, queue_url: str) -> float | None:
        from xml.etree import ElementTree

        query = urllib.parse.urlencode({"QueueUrl": queue_url, "ShowInvisible": "true", "ShowDelayed": "true"})
        root = ElementTree.fromstring(self.fetch(f"{self.endpoint}{LOCALSTACK_MESSAGES_PATH}?{query}"))  # noqa: S314
        sent = [
            int(value.text)
            for attribute in root.iter()
            if attribute.tag.endswith("Attribute")
            for name, value in [(_child(attribute, "Name"), _child(attribute, "Value"))]
            if name is not None and value is not None and name.text == "SentTimestamp" and value.text
        ]
        return max(self.clock() - min(sent) / 1000, 0.0) if sent else None


def _child(element: Any, tag: str) -> Any:
    for child in element:
        if child.tag.endswith(tag):
            return child
    return None


def probe(endpoint: str | None, queue_url: str, region: str = "us-east-1", fetch: Fetch = http_get) -> OldestAge:
    """The way to read the oldest message's age on the local backend at ``endpoint``, found by asking it."""
    if not endpoint:
        return Unknown()
    readers: list[tuple[OldestAge, float]] = [
        (MotoOldest(endpoint, fetch, region=region), 1.0),
        (LocalStackOldest(endpoint, fetch), 5.0),
    ]
    for reader, seconds in readers:
        try:
            reader(queue_url)
        except Exception:  # noqa: BLE001, S112 - not this backend: try the next
            continue
        return Cached(reader, seconds)
    return Unknown()


class QueueWatch:
    def __init__(self, sqs: Any, queues: Mapping[str, str], oldest: OldestAge):
        self.sqs = sqs
        self.queues = dict(queues)
        self.oldest = oldest

    def stats(self) -> list[QueueStats]:
        found = []
        for name, url in self.queues.items():
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS.values()))
            counts = {key: int(attributes["Attributes"].get(attribute, 0)) for key, attribute in COUNTS.items()}
            try:
                age = self.oldest(url) if sum(counts.values()) else None
                source = self.oldest.source
            except Exception as exc:  # noqa: BLE001 - the counts are still worth showing
                age, source = None, f"not read: {type(exc).__name__}"
            found.append(QueueStats(name, url, oldest_age_seconds=age, oldest_from=source, **counts))
        return found
