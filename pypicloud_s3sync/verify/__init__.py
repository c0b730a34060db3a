"""``ppc-s3sync verify``: prove the whole path between regions with a canary package.

A tiny package under a reserved name goes into each region's bucket through pypicloud's
own storage; verify then watches, through each other region's bucket and pypicloud
cache, for its replica and its cache entry, deletes it and watches both go again.  The
lags it measures, or the first link that broke with its fix, are the answer; no canary
outlives the run (see :mod:`.cleanup`).
"""
