"""Retry policy: transient failures only, with exponential backoff."""

from __future__ import annotations

from typing import Any

from hstlc.catalogue.engine import is_transient
from hstlc.errors import TRANSIENT_RETRY_DELAYS_S


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry when the task failed for a transient reason (database, busy file system)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


RETRY_OPTIONS: dict[str, Any] = {
    "retries": len(TRANSIENT_RETRY_DELAYS_S),
    "retry_delay_seconds": list(TRANSIENT_RETRY_DELAYS_S),
    "retry_condition_fn": retry_transient,
}
