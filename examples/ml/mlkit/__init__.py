"""mlkit: the example project's own helpers (plain numpy/pandas/matplotlib, no Pivot imports).

`pipeline.py` imports these modules; because the stages call them, Pivot counts their code as
part of each stage's fingerprint, so editing a helper re-runs exactly the stages that use it.
"""

__all__ = ["data", "evaluation", "figures", "model"]
