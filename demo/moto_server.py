"""moto's server, answering as AWS does where the demo's flow depends on it.

The demo's buckets are versioned (replication needs it), and moto 5.2's server differs
from S3 there in two ways that would stop the flow, both corrected by the tests'
own patches (``tests/support/moto_gaps.py``, which cites S3's documentation for each):

* a delete that adds a delete marker sends no event, so the region the marker is
  replicated to would never hear of the delete (``delete_marker_events``; it also
  keeps moto from failing when a marker is deleted by its version ID, as verify's
  clean-up does);
* ``GetBucketReplication`` answers every rule's delete-marker replication as Disabled,
  whatever was put, so a replicator reading the rules would not carry deletes
  (``apply``);

and ``replication_checked`` refuses the replication configurations AWS refuses.  The
demo reuses those patches rather than a copy of them; ``pytest.MonkeyPatch`` is only
their way of setting attributes.  Run as ``python demo/moto_server.py -H HOST -p PORT``
(moto_server's own arguments).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> None:
    import pytest
    from moto.server import main as serve

    from tests.support import moto_gaps

    patch = pytest.MonkeyPatch()
    moto_gaps.apply(patch)
    moto_gaps.delete_marker_events(patch)
    moto_gaps.replication_checked(patch)
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
