"""Parse and strictly validate simulator scenarios: which fake models exist and how each one behaves."""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from .tokens import MAX_EMBEDDING_DIM, MAX_OUTPUT_TOKENS

# z-score of the 95th percentile of a standard normal: fits a lognormal through p50 and p95.
_Z95 = 1.6448536269514722

RATE_FIELDS = ("error_rate", "rate_limit_rate", "overloaded_rate", "hang_rate", "broken_stream_rate")
TOP_LEVEL_KEYS = ("seed", "defaults", "models")


class ScenarioError(ValueError):
    """The scenario is invalid; the message starts with the path of the offending field."""


@dataclass(frozen=True, slots=True)
class Distribution:
    """A duration in milliseconds: fixed when p95 equals p50, otherwise lognormal through p50 and p95."""

    p50_ms: float
    p95_ms: float
    max_ms: float | None = None
    sigma: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if self.p95_ms > self.p50_ms:
            object.__setattr__(self, "sigma", math.log(self.p95_ms / self.p50_ms) / _Z95)

    @classmethod
    def fixed(cls, ms: float) -> Distribution:
        return cls(ms, ms)

    def sample_s(self, rng: random.Random) -> float:
        if not self.sigma:
            value = self.p50_ms
        else:
            value = self.p50_ms * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        if self.max_ms is not None and value > self.max_ms:
            value = self.max_ms
        return value / 1000.0


@dataclass(frozen=True, slots=True)
class Window:
    """An outage: every request in [start, end) (epoch seconds) fails with `status`."""

    start: float
    end: float
    status: int


@dataclass(frozen=True, slots=True)
class Flap:
    """Up for `up_s`, then down for `down_s` (failing with `down_status`), repeating from `anchor`."""

    up_s: float
    down_s: float
    down_status: int
    anchor: float

    def is_down(self, now: float) -> bool:
        return (now - self.anchor) % (self.up_s + self.down_s) >= self.up_s


@dataclass(frozen=True, slots=True)
class Shape:
    """How a model's latency and errors move over time, for anomaly detection to learn and be tested against.

    Every latency (TTFT, total, embedding) is multiplied by `latency_factor(now)`: a daily pattern (a
    cosine over the UTC day peaking at `daily_peak_hour`), a slow drift (`drift_per_hour` of the base
    per hour since the anchor) and a level shift (`shift_factor` from `shift_after_s` after the anchor).
    An error burst fails every `burst_every`-th request for `burst_s` seconds from `burst_after_s`:
    never two in a row, so it stays under the outage rule (which confirms consecutive failures).
    """

    anchor: float
    daily_amplitude: float = 0.0
    daily_peak_hour: float = 14.0
    drift_per_hour: float = 0.0
    shift_after_s: float | None = None
    shift_factor: float = 1.0
    burst_after_s: float | None = None
    burst_s: float = 0.0
    burst_every: int = 3
    burst_status: int = 500

    def latency_factor(self, now: float) -> float:
        factor = 1.0
        if self.daily_amplitude:
            hour = (now % 86400.0) / 3600.0
            factor *= 1.0 + self.daily_amplitude * math.cos(2.0 * math.pi * (hour - self.daily_peak_hour) / 24.0)
        if self.drift_per_hour:
            factor *= 1.0 + self.drift_per_hour * max(0.0, now - self.anchor) / 3600.0
        if self.shift_after_s is not None and now >= self.anchor + self.shift_after_s:
            factor *= self.shift_factor
        return max(factor, 0.0)

    def in_burst(self, now: float) -> bool:
        if self.burst_after_s is None:
            return False
        start = self.anchor + self.burst_after_s
        return start <= now < start + self.burst_s


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The effective behaviour of one fake model: defaults merged with its own settings."""

    name: str
    settings: Mapping[str, Any]  # the model's own settings, as written (JSON-able)
    anchor: float  # epoch seconds that relative outage times and the flap cycle count from
    ttft_ms: Distribution
    latency_ms: Distribution | None
    tokens_per_s: float
    output_tokens: int
    error_rate: float
    error_status: int
    rate_limit_rate: float
    retry_after_s: float
    overloaded_rate: float
    hang_rate: float
    hang_max_s: float
    broken_stream_rate: float
    outages: tuple[Window, ...]
    flap: Flap | None
    require_api_key: str | None
    embedding_dim: int
    # Per-region behaviour, chosen by the request's X-Probe-Region header: the model's settings with the
    # region's on top. A region not named here gets the model's own behaviour.
    regions: Mapping[str, ModelSpec] = field(default_factory=dict)
    shape: Shape | None = None


@dataclass(frozen=True, slots=True)
class _Moment:
    """An outage boundary before it is pinned to a clock: seconds after the anchor, or an absolute epoch time."""

    value: float
    absolute: bool


@dataclass(frozen=True, slots=True)
class _WindowSpec:
    start: _Moment | None
    end: _Moment | None
    status: int
    path: str


@dataclass(frozen=True, slots=True)
class _FlapSpec:
    up_s: float
    down_s: float
    down_status: int


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rate(value: Any, path: str) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ScenarioError(f"{path}: must be a number between 0 and 1")
    return float(value)


def _non_negative(value: Any, path: str) -> float:
    if not _is_number(value) or value < 0:
        raise ScenarioError(f"{path}: must be a number >= 0")
    return float(value)


def _positive(value: Any, path: str) -> float:
    if not _is_number(value) or value <= 0:
        raise ScenarioError(f"{path}: must be a number > 0")
    return float(value)


def _bounded_int(maximum: int) -> Callable[[Any, str], int]:
    def parse(value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
            raise ScenarioError(f"{path}: must be an integer between 1 and {maximum}")
        return value

    return parse


def _error_status(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
        raise ScenarioError(f"{path}: must be an HTTP error status, an integer from 400 to 599")
    return value


def _check_keys(value: Mapping[str, Any], allowed: tuple[str, ...] | Mapping[str, Any], path: str) -> None:
    for key in value:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            suggestion = f"did you mean '{hint[0]}'?" if hint else f"expected one of: {', '.join(sorted(allowed))}"
            raise ScenarioError(f"{path}.{key}: unknown setting ({suggestion})")


def _distribution(value: Any, path: str) -> Distribution:
    if _is_number(value):
        if value < 0:
            raise ScenarioError(f"{path}: must be a number of milliseconds >= 0")
        return Distribution.fixed(float(value))
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: must be milliseconds (a number) or a mapping with p50 and optionally p95, max")
    _check_keys(value, ("p50", "p95", "max"), path)
    if "p50" not in value:
        raise ScenarioError(f"{path}.p50: is required")
    p50 = _non_negative(value["p50"], f"{path}.p50")
    p95 = _non_negative(value.get("p95", p50), f"{path}.p95")
    if p95 < p50:
        raise ScenarioError(f"{path}.p95: must be >= p50 ({p50:g})")
    if p95 > p50 and p50 == 0:
        raise ScenarioError(f"{path}.p50: must be > 0 when p95 is larger (a lognormal needs a positive median)")
    maximum = value.get("max")
    if maximum is not None:
        maximum = _non_negative(maximum, f"{path}.max")
        if maximum < p50:
            raise ScenarioError(f"{path}.max: must be >= p50 ({p50:g})")
    return Distribution(p50, p95, maximum)


def _optional_distribution(value: Any, path: str) -> Distribution | None:
    return None if value is None else _distribution(value, path)


def _moment(value: Any, path: str) -> _Moment | None:
    if value is None:
        return None
    if _is_number(value):
        return _Moment(float(value), absolute=False)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        # A timestamp without a zone is read as UTC so the file means the same on every machine.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return _Moment(value.timestamp(), absolute=True)
    raise ScenarioError(f"{path}: must be seconds after the scenario was loaded (a number) or an ISO-8601 timestamp")


def _outages(value: Any, path: str) -> tuple[_WindowSpec, ...]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: must be a list of windows like {{start: 0, end: 60, status: 503}}")
    windows = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{item_path}: must be a mapping with start, end and optionally status")
        _check_keys(item, ("start", "end", "status"), item_path)
        start = _moment(item.get("start"), f"{item_path}.start")
        end = _moment(item.get("end"), f"{item_path}.end")
        status = _error_status(item.get("status", 503), f"{item_path}.status")
        windows.append(_WindowSpec(start, end, status, item_path))
    return tuple(windows)


def _flap(value: Any, path: str) -> _FlapSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: must be a mapping with up_s, down_s and optionally down_status")
    _check_keys(value, ("up_s", "down_s", "down_status"), path)
    for key in ("up_s", "down_s"):
        if key not in value:
            raise ScenarioError(f"{path}.{key}: is required")
    return _FlapSpec(
        _positive(value["up_s"], f"{path}.up_s"),
        _positive(value["down_s"], f"{path}.down_s"),
        _error_status(value.get("down_status", 503), f"{path}.down_status"),
    )


_SHAPE_PARTS = {
    "daily": ("amplitude", "peak_hour"),
    "drift": ("per_hour",),
    "level_shift": ("after_s", "factor"),
    "error_burst": ("after_s", "duration_s", "every", "status"),
}


def _shape(value: Any, path: str) -> dict[str, Any] | None:
    """{daily: {amplitude, peak_hour}, drift: {per_hour}, level_shift: {after_s, factor},
    error_burst: {after_s, duration_s, every, status}}, each part optional; kept as given, built per anchor."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: must be a mapping with daily, drift, level_shift and/or error_burst")
    _check_keys(value, _SHAPE_PARTS, path)
    for part, keys in _SHAPE_PARTS.items():
        given = value.get(part)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise ScenarioError(f"{path}.{part}: must be a mapping of {', '.join(keys)}")
        _check_keys(given, keys, f"{path}.{part}")
    daily = value.get("daily") or {}
    if "amplitude" in daily and not (_is_number(daily["amplitude"]) and 0 <= daily["amplitude"] < 1):
        raise ScenarioError(f"{path}.daily.amplitude: must be a number from 0 to below 1")
    if "peak_hour" in daily and not (_is_number(daily["peak_hour"]) and 0 <= daily["peak_hour"] < 24):
        raise ScenarioError(f"{path}.daily.peak_hour: must be an hour from 0 to below 24")
    drift = value.get("drift") or {}
    if "per_hour" in drift and not _is_number(drift["per_hour"]):
        raise ScenarioError(f"{path}.drift.per_hour: must be a number")
    shift = value.get("level_shift") or {}
    if shift:
        _non_negative(shift.get("after_s", 0), f"{path}.level_shift.after_s")
        _positive(shift.get("factor", 1), f"{path}.level_shift.factor")
    burst = value.get("error_burst") or {}
    if burst:
        _non_negative(burst.get("after_s", 0), f"{path}.error_burst.after_s")
        _positive(burst.get("duration_s", 60), f"{path}.error_burst.duration_s")
        every = burst.get("every", 3)
        if not isinstance(every, int) or isinstance(every, bool) or every < 2:
            raise ScenarioError(f"{path}.error_burst.every: must be a whole number of at least 2 (never two in a row)")
        _error_status(burst.get("status", 500), f"{path}.error_burst.status")
    return _plain(value)


def _build_shape(value: Mapping[str, Any] | None, anchor: float) -> Shape | None:
    if not value:
        return None
    daily, drift = value.get("daily") or {}, value.get("drift") or {}
    shift, burst = value.get("level_shift") or {}, value.get("error_burst") or {}
    return Shape(
        anchor=anchor,
        daily_amplitude=float(daily.get("amplitude", 0.0)),
        daily_peak_hour=float(daily.get("peak_hour", 14.0)),
        drift_per_hour=float(drift.get("per_hour", 0.0)),
        shift_after_s=float(shift.get("after_s", 0.0)) if shift else None,
        shift_factor=float(shift.get("factor", 1.0)),
        burst_after_s=float(burst.get("after_s", 0.0)) if burst else None,
        burst_s=float(burst.get("duration_s", 60.0)),
        burst_every=int(burst.get("every", 3)),
        burst_status=int(burst.get("status", 500)),
    )


def _api_key(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{path}: must be a non-empty string")
    return value


def _regions(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: must be a mapping from region name to settings")
    regions = {}
    for region, own in value.items():
        if not isinstance(region, str) or not region.strip():
            raise ScenarioError(f"{path}: region names must be non-empty strings, got {region!r}")
        own = own or {}
        if not isinstance(own, Mapping):
            raise ScenarioError(f"{path}.{region}: must be a mapping of settings")
        if "regions" in own:
            raise ScenarioError(f"{path}.{region}.regions: regions do not nest")
        _parse_settings(own, f"{path}.{region}")
        regions[region] = _plain(own)
    return regions


_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "ttft_ms": _distribution,
    "latency_ms": _optional_distribution,
    "tokens_per_s": _non_negative,
    "output_tokens": _bounded_int(MAX_OUTPUT_TOKENS),
    "error_rate": _rate,
    "error_status": _error_status,
    "rate_limit_rate": _rate,
    "retry_after_s": _non_negative,
    "overloaded_rate": _rate,
    "hang_rate": _rate,
    "hang_max_s": _positive,
    "broken_stream_rate": _rate,
    "outages": _outages,
    "flap": _flap,
    "require_api_key": _api_key,
    "embedding_dim": _bounded_int(MAX_EMBEDDING_DIM),
    "regions": _regions,
    "shape": _shape,
}

# What a setting is when neither the model nor `defaults` says: a healthy, instant model.
_BASE: dict[str, Any] = {
    "ttft_ms": Distribution.fixed(0.0),  # ms, or {p50, p95, max}
    "latency_ms": None,  # whole non-streamed answer; None means ttft plus generation time
    "tokens_per_s": 0.0,  # 0 streams as fast as the connection takes it
    "output_tokens": 16,  # tokens written when the request sets no max_tokens
    "error_rate": 0.0,
    "error_status": 500,
    "rate_limit_rate": 0.0,  # 429 with retry-after
    "retry_after_s": 1.0,
    "overloaded_rate": 0.0,  # 529
    "hang_rate": 0.0,  # accept and say nothing until the client leaves or hang_max_s passes (then 504)
    "hang_max_s": 300.0,
    "broken_stream_rate": 0.0,  # cut the connection halfway (a truncated body when not streaming)
    "outages": (),  # [{start, end, status}]: seconds after load or ISO-8601; a missing bound is open
    "flap": None,  # {up_s, down_s, down_status}: up first, from load time
    "require_api_key": None,  # otherwise 401
    "embedding_dim": 8,
    "regions": {},  # {region: {settings}}: per X-Probe-Region header, e.g. {"eu": {"error_rate": 1.0}}
    "shape": None,  # {daily, drift, level_shift, error_burst}: latency and errors moving over time (see Shape)
}

SETTINGS = tuple(_FIELDS)


def _parse_settings(raw: Mapping[str, Any], path: str) -> dict[str, Any]:
    _check_keys(raw, _FIELDS, path)
    return {key: _FIELDS[key](value, f"{path}.{key}") for key, value in raw.items()}


def _plain(value: Any) -> Any:
    """A JSON-able copy: YAML turns unquoted timestamps into datetimes, which JSON cannot carry."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _pin(moment: _Moment | None, anchor: float, unbounded: float) -> float:
    if moment is None:
        return unbounded
    return moment.value if moment.absolute else anchor + moment.value


def _build_model(name: str, own: Mapping[str, Any], defaults: Mapping[str, Any], anchor: float) -> ModelSpec:
    path = f"models.{name}"
    if own is None:
        own = {}
    if not isinstance(own, Mapping):
        raise ScenarioError(f"{path}: must be a mapping of settings (or empty)")
    merged = {**_BASE, **defaults, **_parse_settings(own, path)}
    total = sum(merged[key] for key in RATE_FIELDS)
    if total > 1 + 1e-9:
        raise ScenarioError(f"{path}: {', '.join(RATE_FIELDS)} add up to {total:g}; together they must not exceed 1")
    windows = []
    for spec in merged["outages"]:
        start = _pin(spec.start, anchor, -math.inf)
        end = _pin(spec.end, anchor, math.inf)
        if end <= start:
            raise ScenarioError(f"{spec.path}.end: must be after start")
        windows.append(Window(start, end, spec.status))
    flap = merged["flap"]
    plain_defaults = {key: value for key, value in defaults.items() if key != "regions"}
    own_settings = {key: value for key, value in own.items() if key != "regions"}
    regions = {
        region: _build_model(name, {**own_settings, **settings}, plain_defaults, anchor)
        for region, settings in merged["regions"].items()
    }
    return ModelSpec(
        name=name,
        settings=_plain(own),
        anchor=anchor,
        ttft_ms=merged["ttft_ms"],
        latency_ms=merged["latency_ms"],
        tokens_per_s=merged["tokens_per_s"],
        output_tokens=merged["output_tokens"],
        error_rate=merged["error_rate"],
        error_status=merged["error_status"],
        rate_limit_rate=merged["rate_limit_rate"],
        retry_after_s=merged["retry_after_s"],
        overloaded_rate=merged["overloaded_rate"],
        hang_rate=merged["hang_rate"],
        hang_max_s=merged["hang_max_s"],
        broken_stream_rate=merged["broken_stream_rate"],
        outages=tuple(windows),
        flap=Flap(flap.up_s, flap.down_s, flap.down_status, anchor) if flap else None,
        require_api_key=merged["require_api_key"],
        embedding_dim=merged["embedding_dim"],
        regions=regions,
        shape=_build_shape(merged["shape"], anchor),
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. Relative times count from `loaded_at` (epoch seconds) unless a model was patched since."""

    models: Mapping[str, ModelSpec]
    seed: int | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    loaded_at: float = 0.0
    source: Path | None = None
    _parsed_defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Any, *, now: float | None = None, source: Path | None = None) -> Scenario:
        if not isinstance(data, Mapping):
            raise ScenarioError("scenario: must be a mapping with 'models' and optionally 'defaults' and 'seed'")
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                hint = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
                suggestion = f"did you mean '{hint[0]}'?" if hint else f"expected one of: {', '.join(TOP_LEVEL_KEYS)}"
                raise ScenarioError(f"{key}: unknown top-level key ({suggestion})")
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ScenarioError("seed: must be an integer")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise ScenarioError("defaults: must be a mapping of settings")
        parsed_defaults = _parse_settings(defaults, "defaults")
        if "models" not in data:
            raise ScenarioError("models: is required (a mapping from model name to its settings)")
        models = data["models"] or {}
        if not isinstance(models, Mapping):
            raise ScenarioError("models: must be a mapping from model name to its settings")
        loaded_at = time.time() if now is None else now
        specs = {}
        for name, own in models.items():
            if not isinstance(name, str) or not name.strip():
                raise ScenarioError(f"models: model names must be non-empty strings, got {name!r}")
            specs[name] = _build_model(name, own, parsed_defaults, loaded_at)
        return cls(
            models=specs,
            seed=seed,
            defaults=_plain(defaults),
            loaded_at=loaded_at,
            source=source,
            _parsed_defaults=parsed_defaults,
        )

    def with_model(self, name: str, changes: Any, *, now: float | None = None) -> Scenario:
        """This scenario with `changes` merged into one model's settings (the model is created if absent).

        Relative outage times and the flap cycle restart from `now` when the patch touches them or the
        model is new, so "outage from 0 to 30" means the next 30 seconds; other patches keep the phase.
        """
        path = f"models.{name}"
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError("models: model names must be non-empty strings")
        if not isinstance(changes, Mapping):
            raise ScenarioError(f"{path}: must be a mapping of settings")
        now = time.time() if now is None else now
        old = self.models.get(name)
        own = {**(old.settings if old else {}), **changes}
        restart = old is None or "outages" in changes or "flap" in changes or "shape" in changes
        spec = _build_model(name, own, self._parsed_defaults, now if restart else old.anchor)
        return Scenario(
            models={**self.models, name: spec},
            seed=self.seed,
            defaults=self.defaults,
            loaded_at=self.loaded_at,
            source=self.source,
            _parsed_defaults=self._parsed_defaults,
        )

    def to_dict(self) -> dict[str, Any]:
        """The scenario as written (JSON-able); loading it again gives the same behaviour."""
        return {
            "seed": self.seed,
            "defaults": copy.deepcopy(dict(self.defaults)),
            "models": {name: copy.deepcopy(dict(spec.settings)) for name, spec in self.models.items()},
        }


def read_scenario_file(path: str | os.PathLike[str]) -> Any:
    """The raw content of a scenario file: JSON for `.json`, YAML otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: scenario file is not UTF-8 text") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: invalid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None


def load_scenario(
    path_or_dict: Scenario | Mapping[str, Any] | str | os.PathLike[str], *, now: float | None = None
) -> Scenario:
    """A validated Scenario from a file path, a dict or an existing Scenario; raises ScenarioError."""
    if isinstance(path_or_dict, Scenario):
        return path_or_dict
    if isinstance(path_or_dict, Mapping):
        return Scenario.from_dict(path_or_dict, now=now)
    if isinstance(path_or_dict, str | os.PathLike):
        path = Path(path_or_dict).resolve()
        return Scenario.from_dict(read_scenario_file(path), now=now, source=path)
    raise ScenarioError(f"scenario: expected a file path or a mapping, got {type(path_or_dict).__name__}")
