"""Migration from and to DVC: `import_dvc` (dvc.yaml -> pivot.yaml) and `export_dvc` (-> dvc.yaml).

Sits above `pivot.api` (it loads pipelines and records carried-over stages through it); must not
import the CLI.
"""

from pivot.migrate.dvc_export import export_dvc
from pivot.migrate.dvc_import import ImportReport, import_dvc

__all__ = ["ImportReport", "export_dvc", "import_dvc"]
