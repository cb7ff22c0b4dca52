"""Shared pytest set-up for the whole suite. Keep it minimal: add a fixture only if many need it."""

from __future__ import annotations

import os

# Plots render headless in the test process and in any worker it starts.
os.environ.setdefault("MPLBACKEND", "Agg")

from tests.servers.seaweedfs import s3_bucket, seaweedfs  # noqa: F401  (shared fixtures)
