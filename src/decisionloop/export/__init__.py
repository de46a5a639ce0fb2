"""Export to other tools (docs/export.md): runs and model versions to an MLflow tracking server
(over its documented HTTP API, without importing mlflow), and a model version to ONNX
(``decisionloop.export.onnx``, with the ``onnx`` extra; imported on use, not here).
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
