"""The database credentials a deployment runs with: never in the repository, made per deployment.

Every database client of the manifests reads ``secretKeyRef: {name: hft-db, key: password}``; the
manifests do not define that Secret. A session adds one holding a fresh password, or points every
reference at a Secret the user already has (``--hft-db-secret``). Pure functions over rendered
objects: no I/O, so the orchestration, the local backend's CLI and the tests share them.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_hftk8s.errors import ConfigError

#: The Secret every database client of the manifests reads.
DB_SECRET = "hft-db"
DB_SECRET_KEY = "password"


def new_password() -> str:
    """A fresh database password for one deployment (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def with_db_secret(
    objects: Sequence[Mapping[str, Any]], *, password: str | None, secret_name: str | None
) -> list[dict[str, Any]]:
    """The objects with the database Secret in place.

    With ``secret_name`` (``--hft-db-secret``) every ``secretKeyRef`` to ``hft-db`` points at the
    user's Secret instead and none is added; otherwise a Secret ``hft-db`` holding ``password`` is
    added - unless the overlay renders one itself, which then wins.
    """
    out = [dict(o) for o in objects]
    if secret_name is not None:
        return [_renamed_secret_refs(o, secret_name) for o in out]
    if any(o.get("kind") == "Secret" and (o.get("metadata") or {}).get("name") == DB_SECRET for o in out):
        return out
    if not password:
        raise ConfigError("expected a database password for the generated Secret hft-db; got none")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": DB_SECRET, "labels": {"app.kubernetes.io/part-of": "hftk8s"}},
        "type": "Opaque",
        "stringData": {DB_SECRET_KEY: password},
    }
    first_non_namespace = next((i for i, o in enumerate(out) if o.get("kind") != "Namespace"), len(out))
    out.insert(first_non_namespace, secret)
    return out


def _renamed_secret_refs(obj: dict[str, Any], name: str) -> dict[str, Any]:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name") == DB_SECRET:
                node["secretKeyRef"] = {**ref, "name": name}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        return node

    return walk(copy.deepcopy(obj))
