"""Credentials never reach a log line: URIs are redacted before they are logged."""

from __future__ import annotations

import re

MASK = "***"

# Azure's file-system URIs put the container in the user-info slot
# (``abfss://container@account.dfs.core.windows.net/path``): a name, not a credential.
CONTAINER_SCHEMES = frozenset({"abfs", "abfss", "wasb", "wasbs"})

# ``scheme://`` or a JDBC-style ``jdbc:postgresql://``; the authority runs to the first / ? # or ;.
_AUTHORITY = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)(?P<inner>:[A-Za-z][A-Za-z0-9+.\-]*)?://"
    r"(?P<authority>[^/?#;]*)"
)
# A parameter whose name holds one of these words, in a query (``?a=1&sig=...``) or in JDBC's
# ``;password=...`` form: SAS signatures, S3 presigned ``X-Amz-Signature`` / ``X-Amz-Credential``,
# ``access_token``, ``api_key``, ``client_secret``, ``password``, ``pwd``.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?<=[?&;])[^=&;#]*(?:token|password|passwd|pwd|secret|sig|key|credential)"
    r"[^=&;#]*)=(?P<value>[^&;#]*)",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """``uri`` with its credentials masked, for a log line.

    The user information of a URL (``https://user:password@host``, ``postgresql+psycopg2://
    user:password@host/db``, ``https://token@host``) becomes ``***@``, and the value of every
    query or JDBC parameter whose name contains token, password, passwd, pwd, secret, sig, key or
    credential becomes ``***`` (an Azure SAS ``sig=``, an S3 presigned ``X-Amz-Signature=``).
    Everything else is left as it is: ``databricks``, ``databricks://profile:prefix`` (a CLI
    profile and a secret-scope prefix, no ``@``), ``sqlite:///path``, local paths, and the
    container of ``abfss://container@account.dfs.core.windows.net/path``.

    Args:
        uri: A URI, URL or path.

    Returns:
        The same string with credentials replaced by ``***``.
    """
    redacted = uri
    match = _AUTHORITY.match(uri)
    if match and "@" in match["authority"] and match["scheme"].lower() not in CONTAINER_SCHEMES:
        host = match["authority"].rsplit("@", 1)[1]  # a password may hold an unescaped @
        redacted = f"{uri[: match.start('authority')]}{MASK}@{host}{uri[match.end('authority') :]}"
    return _SECRET_PARAMETER.sub(lambda found: f"{found['name']}={MASK}", redacted)
