"""Reads results and never runs anything: metrics, params and plots across git revisions, the
DAG, the stage list, the run history and the HTML report.

Reads lock files, output files (from the workspace, git or the cache), git and `.pivot/runs/`;
writes nothing but the HTML pages it is asked for. Never imports execute, api or cli
(import-linter checks it).
"""
