"""Print the target runtime's preinstalled packages as constraints, less those the wheel may
upgrade (runtime/databricks-runtime.toml). Used by scripts/lock.sh; standard library only."""

from __future__ import annotations

import tomllib
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "runtime" / "databricks-runtime.toml"


def main() -> None:
    runtime = tomllib.loads(RUNTIME.read_text())
    allowed = set(runtime["wheel"]["may_replace"])
    for line in (RUNTIME.parent / runtime["preinstalled"]).read_text().splitlines():
        if line.strip() and not line.startswith("#") and line.split("==")[0] not in allowed:
            print(line)


if __name__ == "__main__":
    main()
