"""Pipelines and params in YAML: `pivot.yaml` stages (with matrices) and `params.yaml` overrides.

Called by `pivot.discovery`; builds StageSpecs through `pivot.pipeline` and `pivot.command`.
Must not import graph, plan, execute, store, api or cli.
"""

from pivot.pipeline_yaml.params import PARAMS_FILE, apply_params_file
from pivot.pipeline_yaml.schema import pivot_yaml_schema
from pivot.pipeline_yaml.stages import PIVOT_YAML, load_pivot_yaml

__all__ = ["PARAMS_FILE", "PIVOT_YAML", "apply_params_file", "load_pivot_yaml", "pivot_yaml_schema"]
