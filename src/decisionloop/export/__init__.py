"""Export to other tools: runs and model versions to an MLflow tracking server (docs/export.md).

Nothing here imports those tools' packages; it speaks their documented HTTP APIs.
"""

from __future__ import annotations

from decisionloop.export.mlflow import (
    ExportedRun,
    ExportedVersion,
    ExportSummary,
    MLflowExporter,
)
from decisionloop.export.mlflow_rest import MLflowCredentials, MLflowRestClient

__all__ = [
    "ExportSummary",
    "ExportedRun",
    "ExportedVersion",
    "MLflowCredentials",
    "MLflowExporter",
    "MLflowRestClient",
]
