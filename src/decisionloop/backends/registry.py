"""Choose a backend by URL scheme. Built-in backends register through entry points too, so a
third-party package adds a scheme by declaring ``decisionloop.metadata_stores``,
``decisionloop.artifact_stores`` or ``decisionloop.online_stores`` entry points to a
``factory(url, settings)`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.backends.artifacts.base import ArtifactStore
    from decisionloop.backends.metadata.base import MetadataStore
    from decisionloop.backends.online.base import OnlineStore
    from decisionloop.config import Settings

METADATA_GROUP = "decisionloop.metadata_stores"
ARTIFACT_GROUP = "decisionloop.artifact_stores"
ONLINE_GROUP = "decisionloop.online_stores"


def sql_metadata(url: str, settings: Settings) -> MetadataStore:
    from decisionloop.backends.metadata.sql import SqlMetadataStore

    return SqlMetadataStore(url)


def local_artifacts(url: str, settings: Settings) -> ArtifactStore:
    from decisionloop.backends.artifacts.local import LocalArtifactStore

    return LocalArtifactStore(url)


def s3_artifacts(url: str, settings: Settings) -> ArtifactStore:
    from decisionloop.backends.artifacts.s3 import S3ArtifactStore

    return S3ArtifactStore(
        url,
        endpoint_url=settings.s3.endpoint_url,
        region=settings.s3.region,
        access_key_id=settings.s3.access_key_id,
        secret_access_key=settings.s3.secret_access_key,
    )


def sqlite_online(url: str, settings: Settings) -> OnlineStore:
    """The online store in a SQLite file (``sqlite:///path/online.db``)."""
    from decisionloop.backends.online.sqlite import SqliteOnlineStore

    return SqliteOnlineStore(url)


def redis_online(url: str, settings: Settings) -> OnlineStore:
    """The online store in Redis (``redis://host:6379/0``, ``rediss://...``)."""
    from decisionloop.backends.online.redis import RedisOnlineStore

    return RedisOnlineStore(url)


_BUILTIN: dict[str, dict[str, Callable[..., Any]]] = {
    METADATA_GROUP: {"sqlite": sql_metadata, "postgresql": sql_metadata, "postgres": sql_metadata},
    ARTIFACT_GROUP: {"file": local_artifacts, "s3": s3_artifacts},
    ONLINE_GROUP: {"sqlite": sqlite_online, "redis": redis_online, "rediss": redis_online},
}


@cache
def _factories(group: str) -> dict[str, Callable[..., Any]]:
    found = dict(_BUILTIN[group])
    for entry in entry_points(group=group):
        found[entry.name] = entry.load()
    return found


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise Invalid(f"not a URL: {url!r}", hint="backend locations are URLs, e.g. sqlite:///x.db")
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _factory(group: str, url: str, what: str) -> Callable[..., Any]:
    factories = _factories(group)
    scheme = scheme_of(url)
    if scheme not in factories:
        raise Invalid(
            f"no {what} for URL scheme {scheme!r}",
            hint=f"use one of: {', '.join(sorted(s + '://' for s in factories))}",
        )
    return factories[scheme]


def open_metadata_store(url: str, settings: Settings) -> MetadataStore:
    store: MetadataStore = _factory(METADATA_GROUP, url, "metadata store")(url, settings)
    return store


def open_artifact_store(url: str, settings: Settings) -> ArtifactStore:
    store: ArtifactStore = _factory(ARTIFACT_GROUP, url, "artifact store")(url, settings)
    return store


def open_online_store(url: str, settings: Settings) -> OnlineStore:
    """The online feature store named by ``url`` (``sqlite:///...``, ``redis://...``)."""
    store: OnlineStore = _factory(ONLINE_GROUP, url, "online store")(url, settings)
    return store
