"""Pipeline configuration: load YAML, validate against the schema, check names, hash sections."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


# images in resources/images/cifar10_320.npz: the built-in spaces' proxy batches draw from them
SHIPPED_IMAGES = 320


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
    """Return a validated copy of `config` with schema defaults filled in, names checked
    (`check_names`) and predictors checked (`check_predictors`)."""
    config = validate_schema(config)
    check_names(config)
    check_predictors(config)
    return config


def validate_schema(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` checked against the schema, with the schema's defaults filled in."""
    config = copy.deepcopy(config)
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = _set_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        hint = err.schema.get("description") if err.validator in ("oneOf", "anyOf") else None
        raise ConfigError(f"config field {where}: {err.message}" + (f" ({hint})" if hint else ""))
    return config


def _check_protocols(config: dict[str, Any]) -> None:
    """Predictors' `datasets` are configured targets and every evaluation protocol resolves (a
    protocol whose training label no predictor trains on scores nothing: a config may keep it
    while its predictors are cut down)."""
    from parzc.evaluation.protocols import resolve_protocols

    try:
        resolve_protocols(config["evaluation"]["protocols"])
    except ValueError as exc:
        raise ConfigError(f"config field {exc}") from None
    targets = {d for entry in config["spaces"].values() for d in entry["datasets"]}
    for label, entry in config["train"]["predictors"].items():
        unknown = sorted(set(entry.get("datasets") or ()) - targets)
        if unknown:
            raise ConfigError(
                f"config field train/predictors/{label}/datasets: {unknown[0]!r} is not a "
                f"dataset of any configured space ({', '.join(sorted(targets))})"
            )


def check_names(config: dict[str, Any]) -> None:
    """Fail on unknown names and inconsistent values the schema cannot express, naming the
    offending field and value: unknown spaces, datasets and proxies; a proxy in two feature
    sets; training splits that do not fit the pool; training features nobody extracts.

    Needs no torch, so that parsing the workflow stays fast; `check_predictors` does the rest.
    """
    from parzc.proxies import validate_proxy_names
    from parzc.spaces import get_space

    register_spaces(config)
    builtin = [name for name, entry in config["spaces"].items() if "source" not in entry]
    if builtin and config["batch"]["size"] > SHIPPED_IMAGES:
        raise ConfigError(
            f"config field batch/size: {config['batch']['size']} exceeds the {SHIPPED_IMAGES} "
            f"shipped CIFAR-10 images that the built-in spaces ({', '.join(builtin)}) use"
        )
    owner: dict[tuple[str, str], str] = {}
    for set_name, proxies in config["feature_sets"].items():
        if not proxies.get("layer") and not proxies.get("network"):
            raise ConfigError(f"config field feature_sets/{set_name}: no proxies listed")
        try:
            validate_proxy_names(proxies.get("layer", []), proxies.get("network", []))
        except KeyError as exc:
            raise ConfigError(f"config field feature_sets/{set_name}: {exc}") from None
        for kind in ("layer", "network"):
            for proxy in proxies.get(kind, []):
                if (kind, proxy) in owner:
                    raise ConfigError(
                        f"config field feature_sets/{set_name}/{kind}: {kind} proxy {proxy!r} "
                        f"is already in feature set {owner[kind, proxy]!r}; list each proxy in "
                        "one set only (the store would hold it twice)"
                    )
                owner[kind, proxy] = set_name
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
        proxy_dataset = entry.get("proxy_dataset")
        if proxy_dataset is not None:
            try:
                space.dataset(proxy_dataset)
            except ValueError as exc:
                raise ConfigError(
                    f"config field spaces/{space_name}/proxy_dataset: {exc}"
                ) from None
        count = entry["archs"]["count"]
        networks = len(space.networks())
        if count is not None and count > networks:
            raise ConfigError(
                f"config field spaces/{space_name}/archs/count: {count} exceeds the "
                f"{networks} distinct networks of {space_name}"
            )
        if space.ground_truth:  # a user's space sizes its splits by its labels (parzc.dag)
            _check_train_sizes(space_name, entry, count if count is not None else networks)
    _check_training_features(config)
    _check_constraints(config)
    _check_protocols(config)
    unknown = [p for p in config["rank"]["predictors"] if p not in config["train"]["predictors"]]
    if unknown:
        raise ConfigError(
            f"config field rank/predictors: {unknown[0]!r} is not a train/predictors label "
            f"(labels: {', '.join(config['train']['predictors']) or 'none'})"
        )


def _extracted_columns(config: dict[str, Any]) -> set[str]:
    """The aggregate columns the feature sets give: per-layer sums by name, network-level
    proxies as net:<name>."""
    sets = config["feature_sets"].values()
    extracted = {p for s in sets for p in s.get("layer", [])}
    return extracted | {f"net:{p}" for s in sets for p in s.get("network", [])}


def _check_constraints(config: dict[str, Any]) -> None:
    """Each space's constraints bound extracted columns, each with a min not above its max."""
    from parzc.constraints import parse_constraints

    extracted = _extracted_columns(config)
    for space_name, entry in config["spaces"].items():
        where = f"config field spaces/{space_name}/constraints"
        try:
            bounds = parse_constraints(entry.get("constraints"))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        for bound in bounds:
            if bound.column not in extracted:
                raise ConfigError(
                    f"{where}: {bound.column!r} is extracted by no feature set (per-layer sums "
                    f"by name, network-level as net:<name>; extracted: "
                    f"{', '.join(sorted(extracted))})"
                )


def _check_pretrain_proxies(config: dict[str, Any], predictor: Any, where: str) -> None:
    """A predictor that pretrains on proxies (fusion) needs each of them in a feature set:
    `pretrain_proxies` and every entry of `pretrain_member_proxies`."""
    if not getattr(predictor, "pretrain_epochs", 0):
        return
    extracted = _extracted_columns(config)
    named = {"pretrain_proxies": getattr(predictor, "pretrain_proxies", None) or []}
    entries = getattr(predictor, "pretrain_member_proxies", None) or []
    named["pretrain_member_proxies"] = [p for entry in entries for p in entry]
    for field, proxies in named.items():
        missing = [p for p in proxies if p not in extracted]
        if missing:
            raise ConfigError(
                f"config field {where}/{field}: {missing} are extracted by no feature set "
                f"(per-layer sums by name, network-level as net:<name>; extracted: "
                f"{', '.join(sorted(extracted))}); set {field} or extract them"
            )


def _check_loop(config: dict[str, Any]) -> None:
    """The loop's target, predictor, acquisition and zero-label scorer exist."""
    import numpy as np

    from parzc.loop.acquisition import ACQUISITIONS, Candidates
    from parzc.loop.ask import ZERO_LABEL

    loop = config["loop"]
    entry = config["spaces"].get(loop["space"])
    if entry is None or loop["dataset"] not in entry["datasets"]:
        raise ConfigError(
            f"config field loop: {loop['space']}/{loop['dataset']} is not a configured target "
            f"(spaces: {', '.join(config['spaces'])})"
        )
    if loop["predictor"] not in config["train"]["predictors"]:
        raise ConfigError(
            f"config field loop/predictor: {loop['predictor']!r} is not a train/predictors "
            f"label (labels: {', '.join(config['train']['predictors']) or 'none'})"
        )
    for field, registry in (("acquisition", ACQUISITIONS), ("zero_label", ZERO_LABEL)):
        if loop[field] not in registry:
            raise ConfigError(
                f"config field loop/{field}: unknown {registry.kind} {loop[field]!r}; known: "
                f"{', '.join(registry.names())}"
            )
    nothing = Candidates(*(np.zeros(0) for _ in range(4)))
    try:
        ACQUISITIONS.get(loop["acquisition"])(nothing, 0, **loop["acquisition_params"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config field loop/acquisition_params: {error}") from None
    if (
        loop["labels"] is None
        and "source" in entry
        and loop["dataset"] not in entry.get("labels", {})
    ):
        raise ConfigError(
            f"config field loop/labels: give a labels file, or name one in "
            f"spaces/{loop['space']}/labels/{loop['dataset']}"
        )


def register_spaces(config: dict[str, Any]) -> list[str]:
    """Register the config's own spaces (entries with a `source`), failing with the field.

    Also checks, per user space, what the schema cannot: proxy inputs for every dataset,
    labels files only for configured datasets, and the labels files themselves.
    """
    from parzc.labels import LabelsError
    from parzc.spaces.configured import SpaceSourceError, register_config_spaces

    spaces = config["spaces"]
    for name, entry in spaces.items():
        if "source" in entry:
            continue
        for key in ("python_path", "candidates", "labels", "label_range"):
            if key in entry:
                raise ConfigError(
                    f"config field spaces/{name}/{key}: only a user's space (with `source`) "
                    f"has {key}; {name!r} is a built-in space"
                )
        if entry.get("data"):
            raise ConfigError(
                f"config field spaces/{name}/data: the built-in space {name!r} computes its "
                "proxies on the shipped images; declare your own space to bring your data"
            )
    try:
        names = register_config_spaces(spaces)
    except (SpaceSourceError, ImportError) as exc:
        raise ConfigError(f"config field spaces: {exc}") from None
    for name in names:
        entry = spaces[name]
        bad = [d for d in entry["datasets"] if not re.fullmatch(r"[a-z0-9_-]+", d)]
        if bad:
            raise ConfigError(
                f"config field spaces/{name}/datasets: {bad[0]!r} must be lower-case letters, "
                "digits, '_' or '-' (it names folders of the results)"
            )
        extra = sorted(set(entry.get("labels", {})) - set(entry["datasets"]))
        if extra:
            raise ConfigError(
                f"config field spaces/{name}/labels/{extra[0]}: {extra[0]!r} is not one of the "
                f"space's datasets ({', '.join(entry['datasets'])})"
            )
        low, high = entry.get("label_range", (0, 100))
        if not low < high:
            raise ConfigError(f"config field spaces/{name}/label_range: {low} is not < {high}")
        from parzc.spaces import get_space

        space = get_space(name)
        for dataset in entry.get("labels", {}):
            try:
                space.label_rows(dataset)
            except LabelsError as exc:
                raise ConfigError(f"config field spaces/{name}/labels/{dataset}: {exc}") from None
    return names


def _check_train_sizes(space_name: str, entry: dict[str, Any], pool: int) -> None:
    """Each training split leaves >= 1 arch of the pool to evaluate on; no two are equal."""
    from parzc.training.splits import resolve_size

    sizes = entry.get("train_sizes", [])
    if not sizes:
        return
    seen: dict[int, Any] = {}
    for i, size in enumerate(sizes):
        try:
            n = resolve_size(size, pool)
        except ValueError as exc:
            raise ConfigError(f"config field spaces/{space_name}/train_sizes/{i}: {exc}") from None
        if n in seen:
            raise ConfigError(
                f"config field spaces/{space_name}/train_sizes/{i}: {size} gives {n} training "
                f"archs of the pool of {pool}, as does {seen[n]}; the two splits would be the same"
            )
        seen[n] = size


def check_predictors(config: dict[str, Any]) -> None:
    """Predictor models and their parameters, with every space's overrides, and the loop's
    settings (imports torch)."""
    from parzc.predictors import PREDICTORS, create_predictor

    train = config["train"]
    predictors = train["predictors"]
    if "loop" in config:
        _check_loop(config)
    for space_name, entry in config["spaces"].items():
        for label in entry["predictor_params"]:
            if label not in predictors:
                raise ConfigError(
                    f"config field spaces/{space_name}/predictor_params/{label}: no predictor "
                    f"labelled {label!r} in train/predictors (known: {', '.join(predictors)})"
                )
    for label, spec in predictors.items():
        if spec["model"] not in PREDICTORS:
            raise ConfigError(
                f"config field train/predictors/{label}/model: unknown predictor "
                f"{spec['model']!r}; known: {', '.join(PREDICTORS.names())}"
            )
        for space_name, entry in [(None, {})] + list(config["spaces"].items()):
            overrides = entry.get("predictor_params", {}).get(label, {})
            where = (
                f"train/predictors/{label}/params"
                if not overrides
                else f"spaces/{space_name}/predictor_params/{label}"
            )
            params = {**spec.get("params", {}), **overrides}
            _check_param_types(spec["model"], params, where)
            try:
                predictor = create_predictor(spec["model"], **params)
            except Exception as exc:  # the predictor's own validation names the parameter
                raise ConfigError(f"config field {where}: {exc}") from None
            _check_pretrain_proxies(config, predictor, where)


def _check_training_features(config: dict[str, Any]) -> None:
    """Every training feature is a known layer proxy that some feature set extracts."""
    from parzc.proxies import LAYER_PROXIES

    train = config["train"]
    predictors = train["predictors"]
    if not predictors or not any(e["train_sizes"] for e in config["spaces"].values()):
        return
    extracted = {p for proxies in config["feature_sets"].values() for p in proxies.get("layer", [])}
    for i, proxy in enumerate(train["features"]):
        if proxy not in LAYER_PROXIES:
            raise ConfigError(
                f"config field train/features/{i}: unknown layer proxy {proxy!r}; "
                f"known: {', '.join(LAYER_PROXIES.names())}"
            )
        if proxy not in extracted:
            raise ConfigError(
                f"config field train/features/{i}: {proxy!r} is in no feature set's layer "
                f"proxies (extracted: {', '.join(sorted(extracted))}); add it to a feature set"
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


def _check_param_types(model: str, params: dict[str, Any], where: str) -> None:
    """Numeric and boolean predictor parameters must have their default's type (int for a float
    is fine; a mapping where the parameter's type admits one, e.g. a weight by label count, which
    the predictor checks), so that e.g. `epochs: "2"` fails here naming the parameter."""
    import dataclasses

    from parzc.predictors import PREDICTORS

    predictor = PREDICTORS.get(model)
    hints = typing.get_type_hints(predictor)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(predictor)
        if f.init and f.default is not dataclasses.MISSING
    }
    for name, value in params.items():
        default = defaults.get(name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok or (isinstance(value, dict) and _accepts_mapping(hints[name]))
        else:
            continue
        if not ok:
            raise ConfigError(
                f"config field {where}/{name}: {value!r} is not of type "
                f"{type(default).__name__} (default {default!r})"
            )


def _accepts_mapping(hint: Any) -> bool:
    """Whether a parameter's type hint admits a mapping (e.g. `float | dict[int, float]`)."""
    return any(typing.get_origin(arg) is dict or arg is dict for arg in typing.get_args(hint))
