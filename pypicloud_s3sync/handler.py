"""The handler string every deployed function names: ``pypicloud_s3sync.handler.handle_event``.

The function lives in :mod:`pypicloud_s3sync.function`; this name stays so that functions
already deployed keep working when their code is updated.
"""

from .function.handler import handle_event

__all__ = ["handle_event"]
