"""Sphinx configuration for pypicloud-s3sync's documentation."""

project = "pypicloud-s3sync"
author = "The pypicloud-s3sync authors"
copyright = "2026, " + author
release = "0.1.0"
extensions: list[str] = []
html_theme = "alabaster"
exclude_patterns = ["_build"]
