"""``.local/endpoints.json``: where the running local pipeline is, for the ``inqueue`` CLI (``--local``).

    {"endpoint_url": "http://127.0.0.1:4566",          # the backend's main endpoint
     "endpoints": {"sqs": "http://127.0.0.1:4566", "dynamodb": "http://127.0.0.1:5123", ...},
     "region": "us-east-1", "api_url": "http://127.0.0.1:3000",
     "outputs": {"EventsQueueUrl": "...", "DeadLetterQueueUrl": "...", "StatusTableName": "...", ...}}

``endpoints`` has one URL per service, since they differ on some backends (LocalStack's
SQS beside moto's DynamoDB). ``outputs`` are the template's Outputs resolved against the
local resources, under the same names a deployed stack has, so the CLI reads the runner
and a stack alike. Written when the runner is ready, removed when it stops; a runner
that was killed leaves it behind, which the CLI notices when nothing answers.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

STATE_FILE = Path(".local") / "endpoints.json"


def describe(template: Any, refs: Any, backend: Any, api_url: str | None) -> dict[str, Any]:
    outputs: dict[str, str] = {}
    for name, output in (template.document.get("Outputs") or {}).items():
        # An output the runner cannot resolve locally (an API Gateway attribute, say) is left out.
        with suppress(Exception):
            value = template.resolve(output.get("Value"), refs)
            if isinstance(value, str | int | float) and str(value):
                outputs[name] = str(value)
    if api_url:
        outputs["ApiUrl"] = api_url
    return {
        "endpoint_url": backend.endpoint_url,
        "endpoints": backend.endpoints(),
        "region": backend.region,
        "api_url": api_url,
        "outputs": outputs,
    }


def write_state(state: dict[str, Any], path: Path | None = None) -> Path:
    path = path or STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)
    return path


def remove_state(path: Path | None = None) -> None:
    (path or STATE_FILE).unlink(missing_ok=True)
