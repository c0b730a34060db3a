"""pypicloud's S3 storage settings without its bucket HEAD / create.

``S3Storage.configure`` HEADs the bucket and *creates* it when it is missing, and
pypicloud's ``ICache.configure`` always builds a storage through it.  The Lambda function
never uses that storage object (it reads S3 through its own client), must never create
buckets, and given only cache settings in ``PYPICLOUD_SETTINGS`` has no bucket name at
all, so the cache gets this subclass instead (see
:func:`pypicloud_s3sync.function.cache.open_cache`): the same parsing of ``storage.*``
(prefix, hash layout, region...), minus the network.  Imported
only at bootstrap, because it imports pypicloud.
"""

from __future__ import annotations

from typing import Any

from pypicloud.storage import S3Storage


class OfflineS3Storage(S3Storage):
    """An ``S3Storage`` whose ``configure()`` makes no AWS call."""

    @classmethod
    def _subclass_specific_config(cls, settings: Any, common_config: Any) -> dict[str, Any]:
        return {"bucket": settings.get("storage.bucket")}


#: The dotted name to put in ``pypi.storage`` for pypicloud's resolver.
DOTTED_NAME = f"{__name__}.OfflineS3Storage"

