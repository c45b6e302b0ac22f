"""Pipeline configuration: load YAML, validate against the schema, check names, hash sections."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


def _set_defaults(validator_class):
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Return a validated copy of `config` with schema defaults filled in and names checked."""
    config = copy.deepcopy(config)
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = _set_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise ConfigError(f"config field {where}: {err.message}")
    check_names(config)
    return config


def check_names(config: dict[str, Any]) -> None:
    """Fail on unknown spaces, datasets and proxies, naming the offending value."""
    from parzc.proxies import validate_proxy_names
    from parzc.spaces import get_space

    for set_name, proxies in config["feature_sets"].items():
        if not proxies.get("layer") and not proxies.get("network"):
            raise ConfigError(f"config field feature_sets/{set_name}: no proxies listed")
        try:
            validate_proxy_names(proxies.get("layer", []), proxies.get("network", []))
        except KeyError as exc:
            raise ConfigError(f"config field feature_sets/{set_name}: {exc}") from None
    for space_name, entry in config["spaces"].items():
        try:
            space = get_space(space_name)
        except KeyError as exc:
            raise ConfigError(f"config field spaces/{space_name}: {exc}") from None
        for dataset in entry["datasets"]:
            try:
                space.dataset(dataset)
            except ValueError as exc:
                raise ConfigError(f"config field spaces/{space_name}/datasets: {exc}") from None
        count = entry["archs"]["count"]
        if count is not None and count > space.num_archs():
            raise ConfigError(
                f"config field spaces/{space_name}/archs/count: {count} exceeds the "
                f"{space.num_archs()} architectures of {space_name}"
            )


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    try:
        return validate(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable config parts (recorded in every output)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
