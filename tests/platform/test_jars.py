"""Delta's jars: pinned by SHA-256, downloaded once (never from the network here), verified."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from keras_lakehouse.platform import jars
from keras_lakehouse.platform.jars import DELTA_JARS, DELTA_VERSION, JarChecksumError, PinnedJar

CONTENT = b"PK\x03\x04 not really a jar"
GOOD = PinnedJar("org.example", "thing_2.13", "1.2.3", hashlib.sha256(CONTENT).hexdigest())


@pytest.fixture
def pinned(monkeypatch) -> PinnedJar:
    """One pinned jar (``GOOD``) instead of Delta's, and the installed delta-spark as pinned."""
    monkeypatch.setattr(jars, "DELTA_JARS", (GOOD,))
    monkeypatch.setattr(jars, "installed_delta_version", lambda: DELTA_VERSION)
    return GOOD


@pytest.fixture
def downloads(monkeypatch) -> list[str]:
    """The URLs ``download`` was asked for; each writes ``CONTENT``."""
    asked: list[str] = []

    def fake(url: str, destination: Path) -> None:
        asked.append(url)
        destination.write_bytes(CONTENT)

    monkeypatch.setattr(jars, "download", fake)
    return asked


@pytest.fixture
def repository(tmp_path) -> Iterator[str]:
    """A Maven-layout repository served on 127.0.0.1, holding ``GOOD``; it asks for Basic
    authentication as ``reader:pa55``."""
    root = tmp_path / "repository"
    folder = root / "org/example/thing_2.13/1.2.3"
    folder.mkdir(parents=True)
    (folder / GOOD.filename).write_bytes(CONTENT)
    expected = "Basic " + base64.b64encode(b"reader:pa55").decode()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_error(401)
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://reader:pa55@127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_jar_with_the_wrong_checksum_raises_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    wrong = PinnedJar(GOOD.group, GOOD.artifact, GOOD.version, "0" * 64)
    monkeypatch.setattr(jars, "download", lambda url, destination: destination.write_bytes(CONTENT))
    cache = tmp_path / "jars"
    with pytest.raises(JarChecksumError) as error:
        jars.fetch_jar(wrong, cache, repository="http://127.0.0.1:9")
    message = str(error.value)
    assert GOOD.filename in message
    assert f"expected SHA-256 {'0' * 64}" in message
    assert f"Received: {GOOD.sha256}" in message
    assert list(cache.iterdir()) == []  # neither the jar nor its partial download


def test_a_tampered_cached_jar_is_deleted_with_an_error(tmp_path, pinned, downloads) -> None:
    (tmp_path / GOOD.filename).write_bytes(CONTENT + b"tampered")
    with pytest.raises(JarChecksumError, match=r"thing_2\.13-1\.2\.3\.jar .* from the cache"):
        jars.delta_jars(tmp_path)
    assert not (tmp_path / GOOD.filename).exists()
    assert downloads == []


def test_a_cached_good_jar_is_not_downloaded_again(tmp_path, pinned, downloads) -> None:
    first = jars.delta_jars(tmp_path / "jars", repository="https://mirror.example/maven2/")
    second = jars.delta_jars(tmp_path / "jars", repository="https://mirror.example/maven2/")
    assert first == second == [tmp_path / "jars" / GOOD.filename]
    assert downloads == [
        "https://mirror.example/maven2/org/example/thing_2.13/1.2.3/thing_2.13-1.2.3.jar"
    ]
    assert (tmp_path / "jars" / GOOD.filename).read_bytes() == CONTENT


def test_the_cache_folder_and_the_repository_come_from_the_environment(
    tmp_path, monkeypatch, pinned, downloads
) -> None:
    monkeypatch.setenv("KL_JARS_CACHE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("KL_MAVEN_REPOSITORY", "https://mirror.example/m2")
    assert jars.delta_jars() == [tmp_path / "elsewhere" / GOOD.filename]
    assert downloads[0].startswith("https://mirror.example/m2/org/example/")


def test_a_jar_downloads_over_http_with_the_repositorys_credentials_redacted_in_logs(
    tmp_path, pinned, repository, caplog, monkeypatch
) -> None:
    logger = logging.getLogger("keras_lakehouse.platform.jars")
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    monkeypatch.setattr(logger, "propagate", False)
    with caplog.at_level(logging.INFO, logger=logger.name):
        (path,) = jars.delta_jars(tmp_path / "jars", repository=repository)
    assert path.read_bytes() == CONTENT
    assert [p.name for p in path.parent.iterdir()] == [GOOD.filename]
    logged = caplog.text
    assert "Downloading thing_2.13-1.2.3.jar from http://***@127.0.0.1:" in logged
    assert "pa55" not in logged


def test_a_delta_spark_package_at_another_version_fails_at_start(monkeypatch) -> None:
    from keras_lakehouse.platform.spark import get_or_create_spark

    monkeypatch.setattr(jars, "installed_delta_version", lambda: "4.0.1")
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(RuntimeError) as error:
        get_or_create_spark({"spark.master": "local[1]"}, app_name="mismatch")
    assert str(error.value).startswith(
        "delta-spark 4.0.1 is installed, but Delta's jars are pinned at 4.0.0"
    )
    assert "install delta-spark==4.0.0" in str(error.value)


def test_no_delta_spark_package_fails_with_how_to_install_it() -> None:
    with pytest.raises(RuntimeError, match=r"Received: not installed\..*keras_lakehouse\[local\]"):
        jars.check_delta_version(None)


def test_the_pins_are_the_installed_delta_release_and_spark_ships_the_rest() -> None:
    """delta-spark_2.13's POM also needs antlr4-runtime 4.13.1 and scala-library 2.13: pyspark's
    own jars provide them, so they are not pinned here."""
    import pyspark

    assert jars.installed_delta_version() == DELTA_VERSION
    assert {(jar.artifact, jar.version) for jar in DELTA_JARS} == {
        ("delta-spark_2.13", DELTA_VERSION),
        ("delta-storage", DELTA_VERSION),
    }
    assert all(len(jar.sha256) == 64 for jar in DELTA_JARS)
    shipped = {path.name for path in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    assert "antlr4-runtime-4.13.1.jar" in shipped
    assert any(name.startswith("scala-library-2.13.") for name in shipped)


def test_the_local_session_runs_on_the_pinned_jars_from_the_cache(spark, tmp_path) -> None:
    conf = spark.sparkContext.getConf()
    cache = Path(jars.os.environ.get(jars.CACHE_VARIABLE) or jars.DEFAULT_CACHE).expanduser()
    assert conf.get("spark.jars").split(",") == [str(cache / jar.filename) for jar in DELTA_JARS]
    assert conf.get("spark.jars.packages") is None
    for jar in DELTA_JARS:
        assert jars.sha256_of(cache / jar.filename) == jar.sha256
    spark.range(3).write.format("delta").save(str(tmp_path / "table"))
    assert spark.read.format("delta").load(str(tmp_path / "table")).count() == 3
