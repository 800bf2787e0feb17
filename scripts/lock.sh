#!/usr/bin/env bash
# Re-resolve requirements.lock (make lock; needs the network). Two steps:
#  1. the wheel's dependencies and the `local` extra against the target runtime's preinstalled
#     versions (runtime/databricks-runtime.toml, less the packages it lets the wheel upgrade), so
#     the local twin installs exactly what the Databricks Runtime runs;
#  2. everything, dev tools included, constrained by the versions of step 1, for every supported
#     Python (universal), with hashes (make setup installs with --require-hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/runtime_constraints.py >"$work/runtime.txt"
"$uv" pip compile pyproject.toml --extra local --universal --python-version 3.11 --quiet \
    --no-annotate --no-header -c "$work/runtime.txt" -o "$work/step1.txt"
sed -E 's/ ;.*$//' "$work/step1.txt" | grep '==' >"$work/twin.txt"
"$uv" pip compile pyproject.toml --extra dev --extra local --universal --python-version 3.11 \
    --generate-hashes --quiet -c "$work/twin.txt" -o requirements.lock \
    --custom-compile-command "make lock"
# The annotations name the constraint file; its temporary folder would change every line of them
# at each lock: name it the same way every time.
sed -i -E "s#${work}/twin.txt#<runtime twin constraints>#" requirements.lock
