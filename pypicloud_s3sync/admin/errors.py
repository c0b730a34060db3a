"""What the admin API answers when it cannot do what was asked.

Its own module because the views, the request guards and the job runner all raise or
record it, and none of them should have to import another to do so.
"""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code and a readable message."""

    def __init__(self, status: int, error: str, message: str,
                 headers: dict[str, str] | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        #: What to do about it, kept apart so it can follow another message too.
        self.hint = hint
