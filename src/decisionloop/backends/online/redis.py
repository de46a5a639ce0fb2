"""The online store in Redis (``redis://host:6379/0``, ``rediss://`` for TLS).

One hash per view, ``{prefix}:online:{view}``: the field is the entity key, the value
``"<event_ts>|<json payload>"``. ``?prefix=NAME`` (default ``decisionloop``) lets several
projects share a server; the other query options are redis-py's (``socket_timeout=...``).

A read is one ``HMGET``. A write is one ``MULTI``/``EXEC`` transaction of calls to a Lua script
that applies the newer-or-equal rule field by field, at most 20,000 rows per call: no client
ever sees part of a batch, but Redis does not roll back, so a server failing in the middle of a
batch (out of memory, killed) can leave part of it applied; writing the batch again is safe.
Needs ``pip install 'decisionloop[redis]'``; ``redis`` is imported on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from decisionloop.backends.online.base import (
    OnlineRow,
    decode_many,
    encode_rows,
    validate_keys,
    validate_min_event_ts,
    validate_view,
)
from decisionloop.errors import (
    Conflict,
    DecisionLoopError,
    Forbidden,
    Invalid,
    Unauthenticated,
    Unavailable,
)

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["DEFAULT_PREFIX", "SCHEMES", "RedisOnlineStore", "parse_redis_url"]

SCHEMES = ("redis", "rediss")
DEFAULT_PREFIX = "decisionloop"
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_INSTALL_HINT = "pip install 'decisionloop[redis]'"
#: rows per script call, and fields per HMGET / HDEL: bounded arguments per command
_ROWS_PER_CALL = 20_000
_FIELDS_PER_CALL = 20_000

# KEYS[1]: the view's hash; ARGV: entity key, event_ts, "event_ts|payload", repeated.
# A stored value whose event time cannot be read is replaced.
_WRITE_SCRIPT = """
local stored = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local current_ts = current and tonumber(string.match(current, '^(-?%d+)|'))
  if not current_ts or current_ts <= tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    stored = stored + 1
  end
end
return stored
"""


def parse_redis_url(url: str) -> tuple[str, str]:
    """``(url for redis-py, key prefix)``: the URL without ``prefix=``, checked; else Invalid."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise Invalid(f"malformed Redis URL {_redact(url)}: {exc}", hint=_URL_HINT) from exc
    if parts.scheme.lower() not in SCHEMES:
        raise Invalid(f"not a Redis URL: {_redact(url)}", hint=_URL_HINT)
    if not parts.hostname:
        raise Invalid(f"a Redis URL needs a host: {_redact(url)}", hint=_URL_HINT)
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise Invalid(f"the database in a Redis URL is a number, not {database!r}", hint=_URL_HINT)
    options = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in options if name == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise Invalid(
            f"invalid key prefix {prefix!r} in the Redis URL",
            hint="a prefix is 1-200 letters, digits, '_', '.', ':' or '-'",
        )
    others = urlencode([(name, value) for name, value in options if name != "prefix"])
    return urlunsplit(parts._replace(query=others)), prefix


_URL_HINT = "use redis://host:6379/0 (rediss:// for TLS), optionally with ?prefix=NAME"


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<malformed Redis URL>"


class RedisOnlineStore:
    """An :class:`~decisionloop.backends.online.OnlineStore` in Redis.

    ``RedisOnlineStore("redis://127.0.0.1:6379/0?prefix=churn")``; connects on first use
    (a pool of connections, safe to share between threads). ``timeout_s`` bounds connecting
    and each command unless the URL sets ``socket_timeout`` / ``socket_connect_timeout``.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client_url, self.prefix = parse_redis_url(url)
        self._where = _redact(url)
        self._lock = threading.Lock()
        # the client and the registered write script, together, once connected
        self._connected: tuple[Redis, Script] | None = None
        # redis-py's error class, known once the module is imported
        self._failure: type[Exception] | tuple[()] = ()

    def _key(self, view: str) -> str:
        return f"{self.prefix}:online:{validate_view(view)}"

    def _connection(self) -> tuple[Redis, Script]:
        connected = self._connected
        if connected is not None:
            return connected
        with self._lock:
            if self._connected is None:
                try:
                    import redis
                except ImportError as exc:
                    raise Unavailable("redis is not installed", hint=_INSTALL_HINT) from exc
                try:
                    client = redis.Redis.from_url(
                        self._client_url,
                        socket_connect_timeout=self.timeout_s,
                        socket_timeout=self.timeout_s,
                        decode_responses=True,
                    )
                except (ValueError, TypeError) as exc:
                    raise Invalid(f"bad Redis URL {self._where}: {exc}", hint=_URL_HINT) from exc
                self._failure = redis.exceptions.RedisError
                self._connected = (client, client.register_script(_WRITE_SCRIPT))
            return self._connected

    def _translated(self, exc: Exception) -> DecisionLoopError:
        from redis import exceptions

        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, exceptions.AuthenticationError):
            return Unauthenticated(
                f"Redis at {self._where} refused the credentials: {text}",
                hint="check the user and password in storage.online_url",
            )
        if isinstance(exc, exceptions.NoPermissionError):
            return Forbidden(
                f"Redis at {self._where} refused a command: {text}",
                hint="the Redis user needs HGET, HSET, HMGET, HDEL, HLEN, UNLINK and EVALSHA "
                "on the prefix's keys",
            )
        if isinstance(exc, exceptions.ResponseError) and text.startswith("WRONGTYPE"):
            return Conflict(
                f"Redis at {self._where}: a key under prefix {self.prefix!r} is not a hash",
                hint="another program uses these keys: choose another ?prefix= in the URL",
            )
        return Unavailable(
            f"Redis at {self._where} failed: {text}",
            hint="check that the server is running and reachable at storage.online_url, "
            "then try again",
        )

    # -- the Protocol ----------------------------------------------------------------------

    def write_batch(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Upsert ``rows`` with the Lua script, in one MULTI/EXEC; newer-or-equal wins."""
        key = self._key(view)
        encoded = encode_rows(rows)
        if not encoded:
            return 0
        arguments: list[Any] = []
        for entity_key, event_ts, payload in encoded:
            arguments += (entity_key, event_ts, f"{event_ts}|{payload}")
        client, script = self._connection()
        step = 3 * _ROWS_PER_CALL
        try:
            if len(arguments) <= step:
                return int(script(keys=[key], args=arguments))
            with client.pipeline(transaction=True) as pipeline:
                for start in range(0, len(arguments), step):
                    script(keys=[key], args=arguments[start : start + step], client=pipeline)
                return sum(int(stored) for stored in pipeline.execute())
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc
        except self._failure as exc:
            raise self._translated(exc) from exc

    def read(
        self, view: str, keys: Sequence[str], *, min_event_ts: int | None = None
    ) -> list[OnlineRow | None]:
        """The stored row of each key from one HMGET (None if missing or too old)."""
        key = self._key(view)
        keys = validate_keys(keys)
        validate_min_event_ts(min_event_ts)
        if not keys:
            return []
        unique = list(dict.fromkeys(keys)) if len(keys) > 1 else list(keys)
        client, _ = self._connection()
        try:
            if len(unique) <= _FIELDS_PER_CALL:
                values: list[Any] = client.hmget(key, unique)
            else:  # one round trip still, with bounded commands
                with client.pipeline(transaction=False) as pipeline:
                    for start in range(0, len(unique), _FIELDS_PER_CALL):
                        pipeline.hmget(key, unique[start : start + _FIELDS_PER_CALL])
                    values = [value for part in pipeline.execute() for value in part]
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc
        except self._failure as exc:
            raise self._translated(exc) from exc
        present: list[tuple[str, int]] = []
        payloads: list[str] = []
        for entity_key, value in zip(unique, values, strict=True):
            if value is None:
                continue
            stamp, _, payload = value.partition("|")
            event_ts = int(stamp)
            if min_event_ts is None or event_ts >= min_event_ts:
                present.append((entity_key, event_ts))
                payloads.append(payload)
        found = {
            entity_key: OnlineRow(entity_key, event_ts, decoded)
            for (entity_key, event_ts), decoded in zip(present, decode_many(payloads), strict=True)
        }
        return [found.get(entity_key) for entity_key in keys]

    def delete_entities(self, view: str, keys: Sequence[str]) -> int:
        """HDEL these keys in one MULTI/EXEC; returns how many existed."""
        key = self._key(view)
        unique = list(dict.fromkeys(validate_keys(keys)))
        if not unique:
            return 0
        client, _ = self._connection()
        try:
            with client.pipeline(transaction=True) as pipeline:
                for start in range(0, len(unique), _FIELDS_PER_CALL):
                    pipeline.hdel(key, *unique[start : start + _FIELDS_PER_CALL])
                return sum(int(removed) for removed in pipeline.execute())
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc
        except self._failure as exc:
            raise self._translated(exc) from exc

    def drop_view(self, view: str) -> None:
        """UNLINK the view's hash."""
        key = self._key(view)
        client, _ = self._connection()
        try:
            client.unlink(key)  # frees a large hash in the background, unlike DEL
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc
        except self._failure as exc:
            raise self._translated(exc) from exc

    def count(self, view: str) -> int:
        """HLEN of the view's hash."""
        key = self._key(view)
        client, _ = self._connection()
        try:
            return int(client.hlen(key))
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc
        except self._failure as exc:
            raise self._translated(exc) from exc

    def close(self) -> None:
        """Close the connection pool; later calls connect again."""
        with self._lock:
            connected, self._connected = self._connected, None
        if connected is not None:
            connected[0].close()


def _not_unicode(exc: UnicodeEncodeError) -> Invalid:
    return Invalid(
        f"text that is not valid unicode: {exc}",
        hint="view names and entity keys must not hold lone surrogates",
    )
