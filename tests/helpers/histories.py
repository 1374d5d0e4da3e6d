"""Recorded workflow histories: what the replay tests replay against today's workflow code.

A test that runs a scenario worth keeping calls ``await record_history(handle, "name")`` once the
workflow has closed. Normally that does nothing; with ``LORAFLOW_RECORD_HISTORIES`` set to a
folder (``make histories`` sets it to ``tests/workflows/histories``) it writes the workflow's
history there as ``name.json``, which ``tests/workflows/test_replay.py`` then replays on every
``make test``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHandle, WorkflowHistory

__all__ = ["HISTORIES", "RecordedHistory", "load_histories", "record_history"]

HISTORIES = Path(__file__).resolve().parent.parent / "workflows" / "histories"
_RECORD_INTO = "LORAFLOW_RECORD_HISTORIES"


@dataclass(frozen=True)
class RecordedHistory:
    name: str
    workflow_type: str
    history: WorkflowHistory


async def record_history(handle: WorkflowHandle, name: str) -> Path | None:
    """Write the (closed) workflow's history as ``name.json`` when recording; else None."""
    folder = os.environ.get(_RECORD_INTO)
    if not folder:
        return None
    description = await handle.describe()
    history = await handle.fetch_history()
    path = Path(folder) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "workflow_id": handle.id,
                "workflow_type": description.workflow_type,
                "history": history.to_json_dict(),
            },
            indent=1,
        )
    )
    return path


def load_histories(folder: Path = HISTORIES) -> list[RecordedHistory]:
    recorded = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        recorded.append(
            RecordedHistory(
                path.stem,
                data["workflow_type"],
                WorkflowHistory.from_json(data["workflow_id"], data["history"]),
            )
        )
    return recorded
