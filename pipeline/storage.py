"""The fsspec file system for a landing or warehouse URL, with the settings' S3 endpoint.

Credentials never pass through here: botocore finds them as usual (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, a profile, an instance role), so no manifest can record them. The
endpoint comes from the setting `s3_endpoint_url`, else from AWS_ENDPOINT_URL as botocore reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import fsspec
from fsspec import AbstractFileSystem

if TYPE_CHECKING:
    from pipeline.config import Settings

S3_PROTOCOLS = ("s3", "s3a")


def storage_options(url: str, settings: Settings | None) -> dict[str, Any]:
    """fsspec options for `url`: for S3, no listing cache (other workers write the same
    prefixes) and the configured endpoint and region."""
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol not in S3_PROTOCOLS:
        return {}
    options: dict[str, Any] = {"use_listings_cache": False}
    if settings is not None and settings.s3_endpoint_url:
        options["endpoint_url"] = settings.s3_endpoint_url
    if settings is not None and settings.s3_region:
        options["client_kwargs"] = {"region_name": settings.s3_region}
    return options


def filesystem(url: str, settings: Settings | None) -> tuple[AbstractFileSystem, str]:
    """The file system that holds `url`, and the path of `url` within it."""
    fs, root = fsspec.core.url_to_fs(url, **storage_options(url, settings))
    return fs, root.rstrip("/") or root
