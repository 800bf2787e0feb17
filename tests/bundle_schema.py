"""databricks.yml checked against Databricks' published bundle model, offline.

Each resource of a target's view of the bundle is loaded into the typed model of the
``databricks-bundles`` package (the classes the Databricks CLI's Python support is generated
from): ``Job``, ``Schema``, ``Volume``, ``RegisteredModel``, ``MlflowExperiment``,
``QualityMonitor``. Their ``from_dict`` rejects a field the model does not have (``Unexpected field
'spark_versoin' for class ClusterSpec``), a value outside an enum and a missing required field, so
a typo fails here rather than at deploy time.

``load_bundle`` reads databricks.yml with the files its ``include`` names merged in (and, for an
opt-in file, the files a test names), as the CLI merges them. A target's view is built the way the
CLI builds it, as far as these resources need:

- the target's overrides merged in (maps recursively, lists concatenated; job clusters, tasks and
  parameters by key; grants by principal);
- ``${var.*}``, ``${bundle.*}`` and ``${workspace.*}`` resolved, a whole-string reference keeping
  the variable's type (``num_workers: ${var.gpu_workers}`` stays an int);
- development mode's name prefixes (``[dev <user>] `` and ``dev_<user>_``) and its paused
  triggers: a quality monitor's schedule is dropped (monitors cannot be paused) unless it says
  ``pause_status: UNPAUSED``;
- the target's ``run_as`` and top-level ``permissions`` copied onto the resources that take them,
  and the CLI's refusal of a ``run_as`` other than the deploying identity when the bundle declares
  a resource whose API has no run_as (quality monitors);
- ``${resources.<type>.<key>.<field>}`` resolved from the resulting resources.

The sections the typed packages do not model (``bundle``, ``variables``, ``targets``,
``artifacts``, ``sync``, ``workspace``, ``presets``) are checked against the names the CLI's bundle
JSON schema gives them (``databricks bundle schema``): only their key names are listed here.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from databricks.bundles.experiments import MlflowExperiment
from databricks.bundles.jobs import Job
from databricks.bundles.quality_monitors import QualityMonitor
from databricks.bundles.registered_models import RegisteredModel
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume

RESOURCE_MODELS: dict[str, type] = {
    "jobs": Job,
    "schemas": Schema,
    "volumes": Volume,
    "registered_models": RegisteredModel,
    "experiments": MlflowExperiment,
    "quality_monitors": QualityMonitor,
}
# Resource types the CLI refuses when run_as is not the deploying identity (their APIs have no
# run_as): bundle/config/mutator/resourcemutator/run_as.go.
NO_RUN_AS = ("quality_monitors",)


def _names(text: str) -> set[str]:
    return set(text.split())


# Key names of the sections databricks-bundles does not model, from the CLI's bundle JSON schema.
SECTION_KEYS: dict[str, set[str]] = {
    "root": _names(
        "artifacts bundle environments experimental include permissions presets python "
        "resources run_as scripts sync targets variables workspace"
    ),
    "bundle": _names(
        "cluster_id compute_id databricks_cli_version deployment engine git name uuid"
    ),
    "target": _names(
        "artifacts bundle cluster_id compute_id default git mode permissions presets "
        "resources run_as sync variables workspace"
    ),
    "variable": _names("default description lookup type"),
    "artifact": _names("build dynamic_version executable files path type"),
    "sync": _names("exclude include paths"),
    "workspace": _names(
        "account_id artifact_path auth_type azure_client_id azure_environment "
        "azure_login_app_id azure_tenant_id azure_use_msi azure_workspace_resource_id "
        "client_id experimental_is_unified_host file_path google_service_account host "
        "profile resource_path root_path state_path workspace_id"
    ),
    "presets": _names(
        "artifacts_dynamic_version jobs_max_concurrent_runs name_prefix "
        "pipelines_development source_linked_deployment tags trigger_pause_status"
    ),
    "permission": _names("level group_name service_principal_name user_name"),
    "run_as": _names("service_principal_name user_name"),
}
MODES = {"development", "production"}
# Top-level permission levels and what the CLI turns them into per resource type.
PERMISSION_LEVELS = {
    "jobs": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_VIEW", "CAN_RUN": "CAN_MANAGE_RUN"},
    "experiments": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_READ"},
}
# Lists the CLI merges element by element on a key instead of concatenating.
KEYED_LISTS = {
    ("jobs", "job_clusters"): "job_cluster_key",
    ("jobs", "tasks"): "task_key",
    ("jobs", "parameters"): "name",
    ("schemas", "grants"): "principal",
    ("volumes", "grants"): "principal",
    ("registered_models", "grants"): "principal",
}
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+)\}")


class BundleSchemaError(ValueError):
    """databricks.yml does not fit the published bundle model; the message names the path."""


CONFIG_SUFFIXES = (".yml", ".yaml", ".json")
# The identity that deploys a target unless a test names another.
DEFAULT_USER = "someone@example.com"


def load_bundle(path: Path, include: Iterable[str] = ()) -> dict:
    """The bundle file at ``path`` with the configuration files its ``include`` names merged in,
    and those of ``include`` after them (a file an uncommented ``include`` entry would add).

    As the CLI's ProcessRootIncludes: paths relative to the bundle root, globs expanded (a pattern
    that matches nothing is fine, a plain path that matches nothing is not), only YAML or JSON
    files, each file once; a file's mappings merged in recursively, and a resource that two files
    declare is an error."""
    root = path.parent
    bundle = yaml.safe_load(path.read_text())
    seen = {path.name}
    for entry in [*bundle.get("include", []), *include]:
        if Path(entry).is_absolute():
            raise BundleSchemaError(f"include: {entry}: includes must be relative paths")
        matches = sorted(root.glob(entry))
        if not matches and not any(char in entry for char in "*?["):
            raise BundleSchemaError(f"include: {entry} does not match any files")
        for match in matches:
            relative = str(match.relative_to(root))
            if relative in seen:
                continue
            seen.add(relative)
            if match.suffix not in CONFIG_SUFFIXES:
                raise BundleSchemaError(f"include: {relative} is not a YAML or JSON file")
            _include(bundle, yaml.safe_load(match.read_text()) or {}, relative)
    return bundle


def _include(bundle: dict, included: dict, name: str) -> None:
    for kind, resources in (included.get("resources") or {}).items():
        present = (bundle.get("resources") or {}).get(kind) or {}
        twice = sorted(set(present) & set(resources or {}))
        if twice:
            raise BundleSchemaError(f"{name}: resources.{kind} {twice} are declared twice")
    for key, value in included.items():
        bundle[key] = _merge(bundle[key], value) if key in bundle else value


def check_sections(bundle: dict) -> None:
    """Raise if a section the typed packages do not model has a key the CLI does not know."""
    _keys("", bundle, "root")
    _keys("bundle", bundle.get("bundle", {}), "bundle")
    if "name" not in bundle.get("bundle", {}):
        raise BundleSchemaError("bundle: missing required field 'name'")
    for name, spec in bundle.get("variables", {}).items():
        _keys(f"variables.{name}", spec, "variable")
    _sections(bundle, "")
    for target, spec in bundle.get("targets", {}).items():
        path = f"targets.{target}"
        _keys(path, spec, "target")
        _sections(spec, f"{path}.")
        if spec.get("mode", "development") not in MODES:
            raise BundleSchemaError(
                f"{path}.mode: expected one of {sorted(MODES)}. Received: {spec['mode']!r}"
            )
        for name, value in (spec.get("variables") or {}).items():
            if name not in bundle.get("variables", {}):
                raise BundleSchemaError(f"{path}.variables.{name}: not a declared variable")
            if isinstance(value, dict):
                _keys(f"{path}.variables.{name}", value, "variable")


def _sections(spec: dict, prefix: str) -> None:
    for name, artifact in (spec.get("artifacts") or {}).items():
        _keys(f"{prefix}artifacts.{name}", artifact, "artifact")
    for section in ("sync", "workspace", "presets", "run_as"):
        _keys(f"{prefix}{section}", spec.get(section) or {}, section)
    for index, permission in enumerate(spec.get("permissions") or []):
        _keys(f"{prefix}permissions[{index}]", permission, "permission")


def _keys(path: str, spec: Any, section: str) -> None:
    if not isinstance(spec, dict):
        raise BundleSchemaError(f"{path or '<root>'}: expected a mapping. Received: {spec!r}")
    unknown = sorted(set(spec) - SECTION_KEYS[section])
    if unknown:
        raise BundleSchemaError(f"{path or '<root>'}: unknown field(s) {unknown}")


def target_view(
    bundle: dict,
    target: str,
    variables: dict[str, Any] | None = None,
    user: str = DEFAULT_USER,
) -> dict:
    """The bundle as the CLI sees it for ``target``, references resolved (see the module doc).

    ``variables`` are what ``--var name=value`` would give; ``user`` is the deploying identity.
    """
    spec = bundle["targets"][target]
    view = copy.deepcopy({key: value for key, value in bundle.items() if key != "targets"})
    for key in ("resources", "workspace", "artifacts", "sync", "presets"):
        if key in spec:
            view[key] = _merge(view.get(key, {}), copy.deepcopy(spec[key]))
    for key in ("run_as", "permissions"):
        if key in spec:
            view[key] = copy.deepcopy(spec[key])
    mode = spec.get("mode")
    _merge_keyed(view.get("resources", {}))

    short_name = re.sub(r"\W", "_", user.split("@")[0])
    workspace = view.setdefault("workspace", {})
    workspace.setdefault(
        "root_path", f"/Workspace/Users/{user}/.bundle/{bundle['bundle']['name']}/{target}"
    )
    context: dict[str, Any] = {
        "bundle": {"name": bundle["bundle"]["name"], "target": target},
        "workspace": {"current_user": {"userName": user, "short_name": short_name}},
        "var": _variables(bundle, spec, variables or {}),
    }
    context["workspace"] |= {k: v for k, v in workspace.items() if isinstance(v, str)}
    context["workspace"]["root_path"] = _resolve(
        workspace["root_path"], context, "workspace.root_path"
    )
    for name, default in (
        ("file_path", "files"),
        ("artifact_path", "artifacts"),
        ("state_path", "state"),
    ):
        context["workspace"].setdefault(name, f"{context['workspace']['root_path']}/{default}")

    view = _resolve(view, context, "", skip=("resources",))
    if mode == "development":
        _prefix_names(view["resources"], f"[dev {short_name}] ")
    _pause_triggers(view, mode)
    _check_run_as(view, user)
    _apply_run_as_and_permissions(view)
    context["resources"] = view["resources"]
    # A reference to a field the resource lacks stays as written: validate_resources names the
    # field the model rejects first, then the reference left unresolved.
    view["resources"] = _resolve(view["resources"], context, "resources", lenient=True)
    return view


def _variables(bundle: dict, target_spec: dict, given: dict[str, Any]) -> dict[str, Any]:
    values = {name: spec.get("default") for name, spec in bundle.get("variables", {}).items()}
    for name, value in (target_spec.get("variables") or {}).items():
        values[name] = value.get("default") if isinstance(value, dict) else value
    for name, value in given.items():
        if name not in values:
            raise BundleSchemaError(f"--var {name}: not a declared variable")
        values[name] = value
    missing = sorted(name for name, value in values.items() if value is None)
    if missing:
        # What `databricks bundle validate` reports as "no value assigned to required variable".
        raise BundleSchemaError(f"no value assigned to required variable(s) {missing}")
    return values


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def _merge_keyed(resources: dict) -> None:
    for (kind, field), key in KEYED_LISTS.items():
        for resource in (resources.get(kind) or {}).values():
            if not isinstance(resource.get(field), list):
                continue
            merged: dict[Any, Any] = {}
            for element in resource[field]:
                name = element.get(key)
                merged[name] = _merge(merged[name], element) if name in merged else element
            if field == "grants":
                for grant in merged.values():
                    grant["privileges"] = list(dict.fromkeys(grant.get("privileges", [])))
            resource[field] = list(merged.values())


def _resolve(
    value: Any, context: dict, path: str, skip: tuple[str, ...] = (), lenient: bool = False
) -> Any:
    """``value`` with every ``${a.b.c}`` looked up in ``context``; references under ``skip``
    roots are left as they are, and so are references that do not resolve if ``lenient``."""
    if lenient:
        try:
            return _resolve(value, context, path, skip)
        except BundleSchemaError:
            if not isinstance(value, (dict, list)):
                return value
    if isinstance(value, dict):
        return {
            k: _resolve(v, context, f"{path}.{k}".lstrip("."), skip, lenient)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve(v, context, f"{path}[{i}]", skip, lenient) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    for _ in range(10):  # variables may refer to variables
        whole = REFERENCE.fullmatch(value)
        if whole and not whole.group(1).startswith(skip or ("\0",)):
            value = _lookup(context, whole.group(1), path)
            if not isinstance(value, str):
                return value
            continue
        resolved = REFERENCE.sub(
            lambda m: (
                m.group(0)
                if m.group(1).startswith(skip or ("\0",))
                else str(_lookup(context, m.group(1), path))
            ),
            value,
        )
        if resolved == value:
            return value
        value = resolved
    raise BundleSchemaError(f"{path}: references do not resolve: {value!r}")


def _lookup(context: dict, reference: str, path: str) -> Any:
    node: Any = context
    for part in reference.split("."):
        if not isinstance(node, dict) or part not in node:
            raise BundleSchemaError(f"{path}: ${{{reference}}} does not resolve (no {part!r})")
        node = node[part]
    return node


def _normalize_prefix(prefix: str) -> str:
    """'[dev alice] ' → 'dev_alice_', as the CLI names Unity Catalog objects in dev mode."""
    text = prefix.replace("[", "").strip(" ")
    suffix = "_" if text.endswith("]") else ""
    text = re.sub(r"_+", "_", re.sub(r"[^\w]|_", "_", text.lower())).strip("_")
    return text + suffix


def _prefix_names(resources: dict, prefix: str) -> None:
    # A resource without a name is left to the model to reject.
    for job in (resources.get("jobs") or {}).values():
        if "name" in job:
            job["name"] = prefix + job["name"]
    for kind in ("schemas", "registered_models"):
        for resource in (resources.get(kind) or {}).values():
            if "name" in resource:
                resource["name"] = _normalize_prefix(prefix) + resource["name"]
    for experiment in (resources.get("experiments") or {}).values():
        if "name" in experiment:
            folder, base = posixpath.split(experiment["name"])
            experiment["name"] = posixpath.join(folder, prefix + base) if folder else prefix + base


def _pause_triggers(view: dict, mode: str | None) -> None:
    """Development mode pauses triggers (``presets.trigger_pause_status`` defaults to PAUSED
    there); monitors cannot be paused, so the CLI drops their schedule unless it is explicitly
    UNPAUSED (bundle/config/mutator/resourcemutator/apply_presets.go)."""
    default = "PAUSED" if mode == "development" else None
    if (view.get("presets") or {}).get("trigger_pause_status", default) != "PAUSED":
        return
    for monitor in ((view.get("resources") or {}).get("quality_monitors") or {}).values():
        schedule = monitor.get("schedule")
        if schedule is not None and schedule.get("pause_status") != "UNPAUSED":
            del monitor["schedule"]


def _check_run_as(view: dict, user: str) -> None:
    """What `bundle validate` reports when run_as names another identity than the deploying one
    and the bundle declares a resource whose API cannot run as someone else."""
    run_as = view.get("run_as") or {}
    identity = run_as.get("service_principal_name") or run_as.get("user_name")
    if not identity or identity == user:
        return
    for kind in NO_RUN_AS:
        if (view.get("resources") or {}).get(kind):
            raise BundleSchemaError(
                f"{kind} do not support a setting a run_as user that is different from the "
                f"owner. Current identity: {user}. Run as identity: {identity}."
            )


def _apply_run_as_and_permissions(view: dict) -> None:
    resources = view.get("resources", {})
    if view.get("run_as"):
        for job in (resources.get("jobs") or {}).values():
            job.setdefault("run_as", copy.deepcopy(view["run_as"]))
    for index, permission in enumerate(view.get("permissions") or []):
        if permission.get("level") not in PERMISSION_LEVELS["jobs"]:
            raise BundleSchemaError(
                f"permissions[{index}].level: expected one of {sorted(PERMISSION_LEVELS['jobs'])}. "
                f"Received: {permission.get('level')!r}"
            )
        for kind, levels in PERMISSION_LEVELS.items():
            if permission["level"] not in levels:
                continue
            for resource in (resources.get(kind) or {}).values():
                entry = dict(permission, level=levels[permission["level"]])
                resource.setdefault("permissions", []).append(entry)


def validate_resources(view: dict) -> dict[str, dict[str, Any]]:
    """Every resource of ``view`` loaded into its databricks-bundles model; raises
    BundleSchemaError naming the resource and the field the model rejects."""
    loaded: dict[str, dict[str, Any]] = {}
    for kind, resources in (view.get("resources") or {}).items():
        if kind not in RESOURCE_MODELS:
            raise BundleSchemaError(
                f"resources.{kind}: not a resource type this check knows "
                f"({sorted(RESOURCE_MODELS)}); add its databricks-bundles model"
            )
        for key, spec in (resources or {}).items():
            try:
                obj = RESOURCE_MODELS[kind].from_dict(copy.deepcopy(spec))
            except (ValueError, TypeError, KeyError) as error:
                raise BundleSchemaError(f"resources.{kind}.{key}: {error}") from error
            loaded.setdefault(kind, {})[key] = obj
    for kind, objects in loaded.items():
        for key, obj in objects.items():
            path, round_trip = f"resources.{kind}.{key}", obj.as_dict()
            unresolved = _unresolved(round_trip)
            if unresolved:
                raise BundleSchemaError(f"{path}: references left unresolved: {unresolved}")
            dropped = _missing_paths(view["resources"][kind][key], round_trip)
            if dropped:
                raise BundleSchemaError(f"{path}: fields the model dropped: {dropped}")
    return loaded


def _unresolved(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [r for v in value.values() for r in _unresolved(v)]
    if isinstance(value, list):
        return [r for v in value for r in _unresolved(v)]
    return REFERENCE.findall(value) if isinstance(value, str) else []


def _missing_paths(given: Any, loaded: Any, path: str = "") -> list[str]:
    """Keys of ``given`` with a non-empty value that the round trip through the model lost."""
    if isinstance(given, dict):
        if not isinstance(loaded, dict):
            return [path or "<root>"]
        return [
            missing
            for key, value in given.items()
            if value not in (None, [], {})
            for missing in (
                _missing_paths(value, loaded[key], f"{path}.{key}".lstrip("."))
                if key in loaded
                else [f"{path}.{key}".lstrip(".")]
            )
        ]
    if isinstance(given, list):
        if not isinstance(loaded, list) or len(loaded) != len(given):
            return [path]
        return [
            m
            for i, (g, x) in enumerate(zip(given, loaded, strict=True))
            for m in _missing_paths(g, x, f"{path}[{i}]")
        ]
    return []


def validate_bundle(
    bundle: dict,
    variables: dict[str, dict[str, Any]] | None = None,
    users: dict[str, str] | None = None,
) -> dict[str, dict]:
    """check_sections, then every target's view through validate_resources; ``variables`` maps a
    target to its ``--var`` values, ``users`` to the identity that deploys it."""
    check_sections(bundle)
    return {
        target: validate_resources(
            target_view(
                bundle,
                target,
                (variables or {}).get(target),
                (users or {}).get(target, DEFAULT_USER),
            )
        )
        for target in bundle.get("targets", {})
    }


def mutated(bundle: dict, path: str, change: Callable[[dict, str], None]) -> dict:
    """A deep copy of ``bundle`` with ``change(parent, last_key)`` applied at a dotted ``path``
    (``[i]`` indexes a list), for tests that break the file on purpose."""
    broken = copy.deepcopy(bundle)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    parent: Any = broken
    for part in parts[:-1]:
        parent = parent[part]
    change(parent, parts[-1])
    return broken


def rename_key(old: str, new: str) -> Callable[[dict, str], None]:
    """A ``mutated`` change that renames key ``old`` of the mapping at the path to ``new``."""

    def change(parent: dict, last: str) -> None:
        mapping = parent[last]
        mapping[new] = mapping.pop(old)

    return change
