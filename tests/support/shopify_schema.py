"""Shopify's Admin GraphQL schema, for checking the documents the connector sends (contract
tests) and for the test double that executes them (issue 18).

The schema is Shopify's own introspection JSON, one file per API version, as shipped by the
npm package @shopify/dev-mcp; scripts/install-shopify-schema.sh (`make shopify-schema`)
unpacks a pinned, integrity-checked version into a cache outside the repository. Nothing
here downloads anything: when the files are missing, `SchemaMissing` says how to get them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    get_variable_values,
    parse,
    validate_schema,
)
from graphql import validate as graphql_validate
from graphql.error import GraphQLSyntaxError

# The Admin API version the connector speaks (one, pinned; Shopify supports each for a
# year): kept with the documents, so the connector itself needs no graphql-core.
from stockyard.connectors.shopify.documents import API_VERSION as API_VERSION

# The @shopify/dev-mcp release the schemas come from (scripts/install-shopify-schema.sh).
PACKAGE_VERSION = "1.16.0"
DIR_ENV = "STOCKYARD_SHOPIFY_SCHEMA_DIR"

# graphql-core (3.3, after graphql-js 17) checks that a field implementing an interface
# field is deprecated only if the interface field is too. Shopify's schema breaks that rule
# in a handful of places (2026-07: Node.id on ChannelDefinition, ChannelInformation and
# DiscountAutomaticBxgy; HasMetafields.metafield(s) on MediaImage;
# CommentEventSubject.hasTimelineComment on Customer), so graphql-core's `validate` refuses
# every document with "Interface field Node.id is not deprecated, so implementation field
# ChannelDefinition.id must not be deprecated." The rule is about the schema's design, not
# about what a request may contain, so it is the one self-check skipped. `load` runs all of
# them, tolerates only errors of this shape, then marks the schema valid: `assume_valid`
# set through the public `GraphQLSchema(**schema.to_kwargs())` copy, which pre-fills the
# cache that `validate` consults (`_validation_errors = []`) instead of re-checking. Any
# other defect of a future schema still fails loudly.
_TOLERATED = re.compile(
    r"Interface field \S+ is not deprecated, so implementation field \S+ must not be"
    r" deprecated\."
)


class SchemaMissing(RuntimeError):
    """The schema files are not installed (scripts/install-shopify-schema.sh)."""


class SchemaInvalid(RuntimeError):
    """The schema fails a graphql-core self-check other than the tolerated one."""


def schema_dir() -> Path:
    """The folder of admin_<version>.json.gz, in the unpacked package: the install script's
    destination ($STOCKYARD_SHOPIFY_SCHEMA_DIR, else the cache folder) + dist/data."""
    given = os.environ.get(DIR_ENV)
    if given:
        root = Path(given)
    else:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = cache_home / "stockyard" / f"shopify-dev-mcp-{PACKAGE_VERSION}"
    return root / "dist" / "data"


def schema_path(version: str = API_VERSION) -> Path:
    return schema_dir() / f"admin_{version}.json.gz"


def available_versions() -> list[str]:
    """The Admin API versions installed (e.g. 2025-10 … 2026-10 and unstable), sorted."""
    found = schema_dir().glob("admin_*.json.gz")
    return sorted(p.name.removeprefix("admin_").removesuffix(".json.gz") for p in found)


def installed(version: str = API_VERSION) -> bool:
    return schema_path(version).is_file()


def load(version: str = API_VERSION) -> GraphQLSchema:
    """The Admin API schema of `version`, built once per process (about 0.4 s)."""
    return _load(version)


# Cached apart from `load`: functools.cache keys on the arguments as passed, so `load()` and
# `load("2026-07")` would each build their own copy.
@cache
def _load(version: str) -> GraphQLSchema:
    path = schema_path(version)
    if not path.is_file():
        raise SchemaMissing(
            f"Shopify Admin schema {version} not found at {path}:"
            " bash scripts/install-shopify-schema.sh"
        )
    with gzip.open(path, "rb") as f:
        introspection: dict[str, Any] = json.load(f)
    built = build_client_schema(introspection.get("data", introspection))
    others = [e.message for e in validate_schema(built) if not _TOLERATED.fullmatch(e.message)]
    if others:
        raise SchemaInvalid(f"Shopify Admin schema {version}: " + "; ".join(others))
    kwargs = built.to_kwargs()
    kwargs["assume_valid"] = True
    return GraphQLSchema(**kwargs)


def validate(
    document: str, variables: dict[str, Any] | None = None, version: str = API_VERSION
) -> list[str]:
    """graphql-core's errors for `document` against the Admin schema (empty: valid), with
    Shopify's own hints (e.g. "Did you mean 'productVariantsBulkUpdate'?"). With
    `variables`, they are coerced to the operation's variable types too, so an input object
    with a field Shopify does not have, or without one it requires, is refused as well."""
    schema = load(version)
    try:
        ast = parse(document)
    except GraphQLSyntaxError as e:
        return [e.message]
    errors = [e.message for e in graphql_validate(schema, ast)]
    if errors or variables is None:
        return errors
    for op in ast.definitions:
        if isinstance(op, OperationDefinitionNode):
            coerced = get_variable_values(schema, op.variable_definitions or (), variables)
            if isinstance(coerced, list):
                errors.extend(e.message for e in coerced)
    return errors


# The mark of every test that needs the schema: skipped with the command that installs it.
needs_schema = pytest.mark.skipif(
    not installed(),
    reason=f"Shopify Admin schema {API_VERSION} not installed at {schema_path()}"
    " (bash scripts/install-shopify-schema.sh)",
)
