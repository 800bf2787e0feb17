"""The pipeline graph: `make viz` and `kedro viz build` come up without a Spark session and
without the network, and a headless Chromium shows the nodes of every registered pipeline."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = PROJECT_ROOT / ".venv" / "bin" / "kedro"
SCREENSHOT = PROJECT_ROOT / "data" / "08_reporting" / "viz" / "pipeline.png"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BROWSER_TIMEOUT_S = 180
VIZ_TIMEOUT_S = 300

pytestmark = pytest.mark.slow

# Loaded by every Python process under test (kedro, the viz server it spawns): logs each DNS
# look-up and socket connection, so the test sees any attempt to reach the network.
NETWORK_AUDIT = """
import os, sys

_log = os.environ["NETWORK_AUDIT_LOG"]

def _audit(event, args):
    if event == "socket.getaddrinfo":
        target = (args[0], args[1])
    elif event == "socket.connect" and isinstance(args[1], tuple):
        target = args[1][:2]
    else:
        return
    with open(_log, "a", encoding="utf-8") as log:
        log.write(f"{event} {target[0]!s} {target[1]!s} pid={os.getpid()}\\n")

sys.addaudithook(_audit)
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by scripts/ensure_chromium.sh when absent."""
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "ensure_chromium.sh")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"Could not install chromium:\n{result.stderr[-4000:]}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def registered_pipelines() -> dict[str, dict[str, str]]:
    """Every registered pipeline: node full name -> the name the graph shows for it."""
    from kedro.framework.project import configure_project

    configure_project("keras_lakehouse")
    from keras_lakehouse.pipeline_registry import register_pipelines

    return {
        pipeline_id: {node.name: _short_name(node) for node in pipeline.nodes}
        for pipeline_id, pipeline in register_pipelines().items()
    }


@pytest.fixture
def viz_env(tmp_path: Path) -> dict[str, str]:
    """Environment for kedro-viz processes: telemetry off, every network attempt logged."""
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    (audit_dir / "sitecustomize.py").write_text(NETWORK_AUDIT)
    env = os.environ | {
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "NETWORK_AUDIT_LOG": str(tmp_path / "network.log"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(audit_dir), os.environ.get("PYTHONPATH")])),
    }
    return env


def test_make_viz_serves_the_graph_without_spark_or_network(viz_env: dict[str, str]) -> None:
    port = _free_port()
    command = ["make", "-s", "-C", str(PROJECT_ROOT), "-o", "setup", "viz"]
    command.append(f"VIZ_ARGS=--port {port} --no-browser")
    log_path = Path(viz_env["NETWORK_AUDIT_LOG"]).with_name("make_viz.log")
    with _running(command, env=viz_env, log_path=log_path) as process:
        main, seen_java = _wait_for_json(f"http://127.0.0.1:{port}/api/main", process, log_path)
        # The page asks for the version too: kedro-viz asks PyPI (30 s timeout) when it serves it.
        started = time.monotonic()
        version = _get_json(f"http://127.0.0.1:{port}/api/version")
        version_s = time.monotonic() - started
        seen_java += _java_processes(process.pid)

    task_names = {node["name"] for node in main["nodes"] if node["type"] == "task"}
    assert task_names, f"The graph has no task nodes. Received: {main['nodes'][:5]}"
    assert version["installed"], version
    assert not seen_java, f"kedro viz started a JVM (Spark): {seen_java}"
    assert not _external_targets(viz_env), _external_targets(viz_env)
    assert version_s < 10, f"/api/version took {version_s:.0f} s: it waited on the network"


def test_viz_build_shows_every_pipeline_in_chromium(
    chromium: str,
    registered_pipelines: dict[str, dict[str, str]],
    project_copy,
    viz_env: dict[str, str],
    tmp_path: Path,
) -> None:
    project = project_copy()
    log_path = tmp_path / "viz_build.log"
    with _running([str(KEDRO), "viz", "build"], env=viz_env, cwd=project, log_path=log_path) as (
        process
    ):
        seen_java = _watch_until_exit(process, VIZ_TIMEOUT_S)
    output = log_path.read_text(errors="replace")
    build = project / "build"
    assert process.returncode == 0, output[-4000:]
    assert "Success!" in output, output[-4000:]
    assert not seen_java, f"kedro viz build started a JVM (Spark): {seen_java}"
    assert not _external_targets(viz_env), _external_targets(viz_env)
    assert "heapanalytics" not in (build / "index.html").read_text(), "Telemetry was injected."

    main = json.loads((build / "api" / "main").read_text())
    assert {p["id"] for p in main["pipelines"]} == set(registered_pipelines)

    with _serve(build) as base_url:
        for pipeline_id, expected in registered_pipelines.items():
            built = json.loads((build / "api" / "pipelines" / pipeline_id).read_text())
            full_names = {n["id"]: n["full_name"] for n in built["nodes"] if n["type"] == "task"}
            assert set(full_names.values()) == set(expected), f"api/pipelines/{pipeline_id}"

            url = f"{base_url}/?pid={pipeline_id}&expandAllPipelines=true"
            # The page draws the main pipeline first and then fetches the one in the URL; on a
            # loaded machine a dump can come before that fetch lands (CI once saw the default
            # pipeline's nodes for ?pid=data_quality). Up to three loads, each in a fresh profile
            # (kedro-viz keeps the last selected pipeline in localStorage).
            for attempt in range(3):
                profile = tmp_path / f"chromium-{pipeline_id}-{attempt}"
                profile.mkdir()
                dom = _chromium(chromium, url, profile, "--dump-dom")
                rendered = {
                    full_names.get(node_id, node_id): label
                    for node_id, label in _rendered_task_nodes(dom).items()
                }
                if rendered == expected:
                    break
            assert rendered == expected, (
                f"Pipeline {pipeline_id!r}: the rendered graph shows {sorted(rendered.values())}. "
                f"Expected: {sorted(expected.values())}"
            )

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        url = f"{base_url}/?pid=__default__&expandAllPipelines=true"
        _chromium(chromium, url, tmp_path, f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 20_000, "The screenshot looks blank."


# ---- helpers -------------------------------------------------------------------------------------


def _short_name(node) -> str:
    """The name kedro-viz shows for a node: its name without the namespace."""
    return node.name.removeprefix(f"{node.namespace}.") if node.namespace else node.name


def _free_port() -> int:
    """A free port below 49152 (kedro-viz refuses ports above that)."""
    for _ in range(100):
        port = random.randint(20_000, 49_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("No free port between 20000 and 49000.")


@contextmanager
def _running(
    command: list[str], *, env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own process group; kill the whole group on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
        except OSError:
            continue
        found.append((child, cmdline.replace(b"\0", b" ").decode(errors="replace")))
        stack.extend(children.get(child, []))
    return found


def _java_processes(pid: int) -> list[str]:
    return [cmd for _, cmd in _descendants(pid) if Path(cmd.split(" ", 1)[0]).name == "java"]


def _watch_until_exit(process: subprocess.Popen, timeout_s: float) -> list[str]:
    """Wait for ``process``, noting any JVM among its descendants meanwhile."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        assert time.monotonic() < deadline, f"Still running after {timeout_s} s."
        seen += _java_processes(process.pid)
        time.sleep(0.2)
    return seen


def _get_json(url: str) -> dict:
    # No proxy for loopback, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=60) as response:
        return json.loads(response.read())


def _wait_for_json(url: str, process: subprocess.Popen, log_path: Path) -> tuple[dict, list[str]]:
    """The first answer from ``url``, and any JVM seen below ``process`` while waiting."""
    seen: list[str] = []
    deadline = time.monotonic() + VIZ_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"kedro viz exited:\n{log_path.read_text()[-4000:]}"
        seen += _java_processes(process.pid)
        try:
            return _get_json(url), seen
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in {VIZ_TIMEOUT_S} s:\n{log_path.read_text()}")


def _external_targets(env: dict[str, str]) -> list[str]:
    """Network look-ups and connections that went beyond this machine's loopback."""
    log = Path(env["NETWORK_AUDIT_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.split(" ")[1] not in LOOPBACK_HOSTS]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def _serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (module scripts and api/ fetches need http)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _chromium(chromium: str, url: str, tmp_path: Path, action: str) -> str:
    """Load ``url`` in headless Chromium with every host but loopback unresolvable."""
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1600,1000",
        "--hide-scrollbars",
        "--virtual-time-budget=20000",
        action,
        url,
    ]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed on {url}:\n{result.stderr[-4000:]}"
    return result.stdout


class _TaskNodeParser(HTMLParser):
    """Collects the graph's task nodes, id -> label: ``<g class="pipeline-node
    pipeline-node--task" data-id=...>`` and its ``<text class="pipeline-node__text">``."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, str] = {}
        self._node: str | None = None
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "g" and "pipeline-node--task" in classes:
            self._node = attributes.get("data-id")
        elif tag == "text" and self._node and "pipeline-node__text" in classes:
            self._in_label = True

    def handle_data(self, data: str) -> None:
        if self._in_label and self._node:
            self.nodes[self._node] = self.nodes.get(self._node, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._in_label = False
        elif tag == "g":
            self._node = None


def _rendered_task_nodes(dom: str) -> dict[str, str]:
    parser = _TaskNodeParser()
    parser.feed(dom)
    return parser.nodes
