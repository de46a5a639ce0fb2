"""DecisionLoop: the MLOps loop for business decisions, in one install.

``import decisionloop`` stays light: heavy modules load on first attribute access.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from decisionloop.config import Settings, load_settings
    from decisionloop.errors import (
        Conflict,
        DecisionLoopError,
        Forbidden,
        GateFailed,
        IntegrityError,
        Invalid,
        InvalidConfig,
        NotFound,
        TooLarge,
        Unauthenticated,
        Unavailable,
    )
    from decisionloop.features.definitions import (
        Entity,
        FeatureService,
        FeatureView,
        OnDemandFeatureView,
    )
    from decisionloop.platform import Platform
    from decisionloop.refs import ModelRef

_EXPORTS = {
    "Conflict": "decisionloop.errors",
    "DecisionLoopError": "decisionloop.errors",
    "Entity": "decisionloop.features.definitions",
    "FeatureService": "decisionloop.features.definitions",
    "FeatureView": "decisionloop.features.definitions",
    "Forbidden": "decisionloop.errors",
    "GateFailed": "decisionloop.errors",
    "IntegrityError": "decisionloop.errors",
    "Invalid": "decisionloop.errors",
    "InvalidConfig": "decisionloop.errors",
    "ModelRef": "decisionloop.refs",
    "NotFound": "decisionloop.errors",
    "OnDemandFeatureView": "decisionloop.features.definitions",
    "Platform": "decisionloop.platform",
    "Settings": "decisionloop.config",
    "TooLarge": "decisionloop.errors",
    "Unauthenticated": "decisionloop.errors",
    "Unavailable": "decisionloop.errors",
    "load_settings": "decisionloop.config",
}

__all__ = [
    "Conflict",
    "DecisionLoopError",
    "Entity",
    "FeatureService",
    "FeatureView",
    "Forbidden",
    "GateFailed",
    "IntegrityError",
    "Invalid",
    "InvalidConfig",
    "ModelRef",
    "NotFound",
    "OnDemandFeatureView",
    "Platform",
    "Settings",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'decisionloop' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
