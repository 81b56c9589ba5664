"""Retry policy: transient failures only, with exponential backoff."""

from __future__ import annotations

from typing import Any

from hstlc.catalogue.engine import is_transient


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry when the task failed for a transient reason (database, busy file system)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


RETRY_OPTIONS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 4, 16],
    "retry_condition_fn": retry_transient,
}
