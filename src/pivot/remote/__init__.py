"""Remotes: directory and S3 object stores holding the cache's blobs, and batched transfer by hash.

A remote's layout is the cache's (`files/ab/cdef...`, `runs/...`), so a directory remote is a
plain copy of `.pivot/cache`. Imports nothing of Pivot's but `pivot.errors`, `pivot.fs` and `pivot.store`.
"""
