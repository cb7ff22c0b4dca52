"""Executors that carry out a plan: serial, loky pool; the worker and its events."""
