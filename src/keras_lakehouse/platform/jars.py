"""Delta's jars for the local Spark session: pinned by SHA-256, fetched once, verified every start.

The pins live here, in the package, rather than in a data file: ``conf/<env>/spark*.yml`` is read
as Spark properties (``settings.py``'s config pattern), a conf override could loosen a pin, and
``runtime/`` does not ship with the wheel that also runs on laptops (``keras_lakehouse[local]``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from keras_lakehouse.platform.redaction import redact_uri

logger = logging.getLogger(__name__)

CACHE_VARIABLE = "KL_JARS_CACHE"
REPOSITORY_VARIABLE = "KL_MAVEN_REPOSITORY"
DEFAULT_CACHE = Path("~/.cache/keras_lakehouse/jars")
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
DOWNLOAD_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class PinnedJar:
    """One Maven artifact and the SHA-256 of its jar."""

    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str) -> str:
        """Where a Maven repository (Maven Central's layout) keeps the jar."""
        folder = f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}"
        return f"{repository.rstrip('/')}/{folder}/{self.filename}"


# The delta-spark package (PyPI) and these jars must be one release: see check_delta_version.
DELTA_VERSION = "4.0.0"
# delta-spark_2.13 4.0.0's POM lists three runtime dependencies: delta-storage 4.0.0,
# antlr4-runtime 4.13.1 and scala-library 2.13.13. pyspark 4.0 already ships antlr4-runtime 4.13.1
# and scala-library 2.13.16 in pyspark/jars, so only Delta's own two jars are fetched.
# Hashes: computed on the jars from Maven Central, whose published .sha1 they match.
DELTA_JARS = (
    PinnedJar(
        "io.delta",
        "delta-spark_2.13",
        DELTA_VERSION,
        "538511702aae0ef6973a6a70af3d4543c9009f8edbed786a00737e2d3cd7f04e",
    ),
    PinnedJar(
        "io.delta",
        "delta-storage",
        DELTA_VERSION,
        "9bdb9fb450f1e119eba53feb427f331b0d09072d26485b8273883ad72c9a2e1d",
    ),
)


class JarChecksumError(RuntimeError):
    """A jar's SHA-256 is not the pinned one (the file has been deleted)."""


def delta_jars(cache_dir: Path | None = None, *, repository: str | None = None) -> list[Path]:
    """Delta's pinned jars in the cache, checked against the installed delta-spark package.

    Args:
        cache_dir: Where the jars are kept; default ``$KL_JARS_CACHE``, else
            ``~/.cache/keras_lakehouse/jars``.
        repository: A Maven repository for the jars missing from the cache; default
            ``$KL_MAVEN_REPOSITORY``, else Maven Central.

    Returns:
        The verified jars' paths, for ``spark.jars``.
    """
    check_delta_version(installed_delta_version())
    cache = Path(cache_dir or os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()
    repository = repository or os.environ.get(REPOSITORY_VARIABLE) or MAVEN_CENTRAL
    return [fetch_jar(jar, cache, repository=repository) for jar in DELTA_JARS]


def installed_delta_version() -> str | None:
    """The version of the delta-spark Python package, or None when it is not installed."""
    try:
        return importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_delta_version(installed: str | None) -> None:
    """Fail when the delta-spark Python package and the pinned jars are not one release."""
    if installed is None:
        raise RuntimeError(
            f"A local Spark session needs the delta-spark Python package {DELTA_VERSION} "
            "(its jars are pinned in keras_lakehouse/jars.py). Received: not installed. "
            "Install the project with `make setup`, or `pip install 'keras_lakehouse[local]'`."
        )
    if installed != DELTA_VERSION:
        raise RuntimeError(
            f"delta-spark {installed} is installed, but Delta's jars are pinned at "
            f"{DELTA_VERSION} (keras_lakehouse/jars.py). Expected one version for both: install "
            f"delta-spark=={DELTA_VERSION} (`make setup`), or pin the {installed} jars (README, "
            "'Requirements and set-up details')."
        )


def fetch_jar(jar: PinnedJar, cache: Path, *, repository: str) -> Path:
    """``jar`` in ``cache``, downloaded when missing; its SHA-256 is checked either way.

    A download goes to a temporary file in ``cache`` that is renamed into place only once its
    hash matches, so the cache never holds a partial or unverified jar under the jar's name.

    Raises:
        JarChecksumError: The hash is not the pinned one; the file has been deleted.
    """
    target = cache / jar.filename
    if target.is_file():
        _verify(target, jar, origin=f"the cache ({cache})")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    url = jar.url(repository)
    logger.info("Downloading %s from %s", jar.filename, redact_uri(url))
    handle, name = tempfile.mkstemp(dir=cache, prefix=f".{jar.filename}.", suffix=".part")
    os.close(handle)
    partial = Path(name)
    try:
        download(url, partial)
        _verify(partial, jar, origin=redact_uri(url))
        partial.chmod(0o644)  # mkstemp's files are private; a jar is not
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def download(url: str, destination: Path) -> None:
    """Write the body at ``url`` to ``destination``. User information in ``url``
    (``https://user:token@mirror/...``) is sent as HTTP Basic authentication."""
    parts = urllib.parse.urlsplit(url)
    request = urllib.request.Request(
        parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
    )
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with (
        urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        destination.open("wb") as file,
    ):
        shutil.copyfileobj(response, file)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, jar: PinnedJar, *, origin: str) -> None:
    actual = sha256_of(path)
    if actual != jar.sha256:
        path.unlink(missing_ok=True)
        raise JarChecksumError(
            f"Checksum mismatch for {jar.filename} ({jar.group}:{jar.artifact}:{jar.version}) "
            f"from {origin}: expected SHA-256 {jar.sha256}. Received: {actual}. The file has "
            "been deleted; the next start downloads it again."
        )
