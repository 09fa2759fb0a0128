"""Powertools Logger and Metrics, one of each per container.

Service name and namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE``, which the template sets per function.

Log lines are paid by the byte (CloudWatch Logs ingestion), and the ingress writes one
per event: a line holds its level, its message, the ids that find the event
(``event_id``, ``correlation_id``) and what the caller adds. No ``timestamp`` (CloudWatch
stamps every line), no ``location`` or ``service`` (the log group names the function),
no Lambda context keys (the handlers do not use ``inject_lambda_context``: its six keys
were 190 of the ingress line's 447 bytes), and ``xray_trace_id`` only when tracing is on.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# The template's TracingMode (Disabled by default: see docs/cost.md); POWERTOOLS_TRACE_DISABLED also turns it off.
TRACING = os.environ.get("INQUEUE_TRACING_MODE", "").strip() != "Disabled" and os.environ.get(
    "POWERTOOLS_TRACE_DISABLED", ""
).strip().lower() not in ("1", "true")
_untraced: dict[str, Any] = {} if TRACING else {"xray_trace_id": None}

logger = Logger(log_record_order=["level", "message"], **_untraced)
logger.remove_keys(["location", "timestamp", "service"])
metrics = Metrics()
