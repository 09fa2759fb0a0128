"""``.local/endpoints.json``: where the running local pipeline is, for the ``inqueue`` CLI (``--local``).

    {"endpoint_url": "http://127.0.0.1:PORT", "region": "us-east-1", "api_url": "http://127.0.0.1:3000",
     "outputs": {"EventsQueueUrl": "...", "DeadLetterQueueUrl": "...", "StatusTableName": "...", ...}}

``outputs`` are the template's Outputs resolved against the local resources, under the
same names a deployed stack has, so the CLI reads the runner and a stack alike.
Written when the runner is ready, removed when it stops.
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
    return {"endpoint_url": backend.endpoint_url, "region": backend.region, "api_url": api_url, "outputs": outputs}


def write_state(state: dict[str, Any], path: Path = STATE_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)
    return path


def remove_state(path: Path = STATE_FILE) -> None:
    path.unlink(missing_ok=True)
