"""Persistence: content hashing, the content-addressed cache, lock files and the state db.

Imports nothing of Pivot's but `pivot.errors` and `pivot.fs`.
"""
