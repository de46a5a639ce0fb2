"""The feature store: definitions as code, point-in-time training sets, materialization and
online retrieval (see docs/features.md). ``platform.features`` holds the verbs."""

from __future__ import annotations

from decisionloop.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    parse_duration,
)

__all__ = ["Entity", "FeatureService", "FeatureView", "OnDemandFeatureView", "parse_duration"]
