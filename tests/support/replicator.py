"""The demo's stand-in for S3 replication (moto does not replicate), for the tests:
one copy of the rules, in ``demo/replicator.py``, which the demo runs as a script."""

from demo.replicator import Replicator, winning_rules

__all__ = ["Replicator", "winning_rules"]
