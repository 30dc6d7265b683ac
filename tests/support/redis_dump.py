"""Every key of a Redis database as JSON (type, TTL, value), and back: state fixtures.

The format of ``tests/integration/service/state_841cfcc/redis.json``: ``{key: {"type", "ttl",
"value"}}`` with ``value`` a string, a hash (object), a list, a set (sorted list), a sorted set
(``[[member, score], ...]``) or a stream (``[[id, {field: value}], ...]``); ``ttl`` in seconds,
-1 for none. Loading keeps every stream entry's id, so a reader sees the stream as written.
"""

from __future__ import annotations

from typing import Any, cast

import redis

__all__ = ["dump_keys", "load_keys"]

KeyDump = dict[str, Any]


def dump_keys(client: redis.Redis) -> dict[str, KeyDump]:
    """Every key of ``client``'s database (a ``decode_responses`` client), sorted by name."""
    out: dict[str, KeyDump] = {}
    for key in sorted(str(k) for k in client.scan_iter(count=1000)):
        kind = str(client.type(key))
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(cast(set[str], client.smembers(key)))
        elif kind == "zset":
            value = [
                [m, s]
                for m, s in cast(
                    list[tuple[str, float]], client.zrange(key, 0, -1, withscores=True)
                )
            ]
        elif kind == "stream":
            value = [[i, f] for i, f in cast(list[tuple[str, dict[str, str]]], client.xrange(key))]
        else:
            raise ValueError(f"{key}: cannot dump a Redis {kind}")
        out[key] = {"type": kind, "ttl": int(cast(int, client.ttl(key))), "value": value}
    return out


def load_keys(client: redis.Redis, keys: dict[str, KeyDump]) -> None:
    """Write ``keys`` (as :func:`dump_keys` gives them) into ``client``'s database."""
    for key, entry in keys.items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            client.set(key, value)
        elif kind == "hash":
            client.hset(key, mapping=value)
        elif kind == "list":
            client.rpush(key, *value)
        elif kind == "set":
            client.sadd(key, *value)
        elif kind == "zset":
            client.zadd(key, {m: s for m, s in value})
        elif kind == "stream":
            for entry_id, fields in value:
                client.xadd(key, fields, id=entry_id)
        else:
            raise ValueError(f"{key}: cannot load a Redis {kind}")
        if entry["ttl"] > 0:
            client.expire(key, entry["ttl"])
