"""config.toml: profiles and defaults.

Reads use stdlib tomllib, writes use tomli-w, atomically and with mode 0600 since the
file may hold a key. A broken file is reported with its line and never overwritten
silently: the app starts on defaults, and a later save moves the broken file aside.
"""

from __future__ import annotations

import functools
import os
import stat
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.units import parse_money

DEFAULT_BASE_URL = "https://api.fastrouter.ai"
SANDBOX = "sandbox"
# The embedded sandbox accepts any key; this one is what fr-tui sends it (not a secret).
SANDBOX_API_KEY = "sk-sandbox-local"
DEFAULT_MAX_ROWS = 50_000
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
# FastRouter describes batch pricing as 50% savings on the model's price.
DEFAULT_BATCH_DISCOUNT = Decimal("0.5")
MILLION = Decimal(1_000_000)
KEY_ENV = "FASTROUTER_API_KEY"
BASE_URL_ENV = "FASTROUTER_BASE_URL"


class KeyError_(Exception):
    """The key source of a profile could not be read (the message says why)."""


def normalise_base_url(url: str) -> str:
    """The part before /v1: accept 'https://x', 'https://x/', 'https://x/v1'."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    return url


def base_url_problem(url: str) -> str | None:
    """Why no client can talk to `url` (None: it is an http(s) address with a host)."""
    scheme, sep, rest = normalise_base_url(url).partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        return f"the base URL {url!r} is not an http:// or https:// address"
    return None


SANDBOX_ORIGIN = "sandbox"


_DEFAULT_PORTS = {"https": ":443", "http": ":80"}


def origin_for(base_url: str, *, sandbox: bool = False) -> str:
    """Which server a batch id belongs to, stable across runs: "sandbox" for the embedded
    sandbox (`sandbox=True` or the sandbox profile's base URL; its loopback port changes
    every run), else the normalised base URL with its scheme and host in lower case and
    without a default port, so one server written two ways is one server in history."""
    if sandbox or base_url.strip() == SANDBOX:
        return SANDBOX_ORIGIN
    url = normalise_base_url(base_url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    scheme = scheme.lower()
    host, slash, path = rest.partition("/")
    host = host.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return f"{scheme}://{host}{slash}{path}"


def mask_key(key: str | None) -> str:
    if not key:
        return "(none)"
    if len(key) <= 10:
        return "•" * len(key)
    return f"{key[:5]}…{key[-2:]}"


@functools.lru_cache(maxsize=16)
def _command_output(profile: str, command: str) -> str | None:
    """A password manager's answer, asked once per run (it may prompt or be slow)."""
    import shlex
    import subprocess

    try:
        done = subprocess.run(
            shlex.split(command),
            stdin=subprocess.DEVNULL,  # never the TUI's terminal
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise KeyError_(f"api_key_command of profile {profile!r} failed: {exc}") from None
    if done.returncode != 0:
        raise KeyError_(f"api_key_command of profile {profile!r} exited with {done.returncode}")
    return done.stdout.strip() or None


@dataclass
class Profile:
    name: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    api_key_env: str | None = None
    api_key_command: str | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    # The share taken off list prices for batch rows (0.5: half price).
    batch_discount: Decimal = DEFAULT_BATCH_DISCOUNT
    # USD budgets: a submit whose high estimate would go over them is refused.
    max_cost_per_batch: Decimal | None = None
    max_cost_per_day: Decimal | None = None
    # The provider's limit on enqueued prompt tokens (one number, or per model): a job
    # plans its parts under it (core/jobs.py).
    max_enqueued_tokens: int | dict[str, int] | None = None

    @property
    def is_sandbox(self) -> bool:
        return self.base_url == SANDBOX

    def __repr__(self) -> str:
        return (
            f"Profile(name={self.name!r}, base_url={self.base_url!r}, "
            f"key_source={self.key_source()!r})"
        )

    def key_source(self) -> str:
        if self.is_sandbox:
            return "sandbox"
        if self.api_key:
            return "config"
        if self.api_key_env:
            return f"env:{self.api_key_env}"
        if self.api_key_command:
            return "command"
        return f"env:{KEY_ENV}"

    def resolve_key(self) -> str | None:
        """The key, from the profile's own source, else FASTROUTER_API_KEY; stripped, and
        refused with a clear message when it cannot go in an HTTP header."""
        key = self._raw_key()
        if key is None:
            return None
        key = key.strip()
        if not key:
            return None
        if not key.isascii() or not key.isprintable() or " " in key:
            raise KeyError_(
                f"The API key of profile {self.name!r} ({self.key_source()}) has a character "
                "that cannot be sent (a space, a line break or a non-ASCII character, often "
                "from copy and paste). Enter it again."
            )
        return key

    def key_missing(self) -> str | None:
        """Why this profile has no key, said without running a key command (None: it has
        one, or a command will say)."""
        if self.is_sandbox or self.api_key or self.api_key_command:
            return None
        if self.api_key_env:
            if os.environ.get(self.api_key_env):
                return None
            return f"no API key: ${self.api_key_env} is not set"
        if os.environ.get(KEY_ENV):
            return None
        return f"no API key: none stored and ${KEY_ENV} is not set"

    def _raw_key(self) -> str | None:
        if self.is_sandbox:
            return SANDBOX_API_KEY
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        if self.api_key_command:
            return _command_output(self.name, self.api_key_command)
        return os.environ.get(KEY_ENV) or None

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base_url": self.base_url}
        for name in ("api_key", "api_key_env", "api_key_command"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.max_rows != DEFAULT_MAX_ROWS:
            out["max_rows"] = self.max_rows
        if self.max_bytes != DEFAULT_MAX_BYTES:
            out["max_bytes"] = self.max_bytes
        if self.batch_discount != DEFAULT_BATCH_DISCOUNT:
            out["batch_discount"] = float(self.batch_discount)
        for name in ("max_cost_per_batch", "max_cost_per_day"):
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        if self.max_enqueued_tokens is not None:
            out["max_enqueued_tokens"] = self.max_enqueued_tokens
        return out


@dataclass(frozen=True)
class UserPrice:
    """A `[prices."provider/model"]` entry of config.toml, per token internally (the
    file says USD per million tokens, as price lists do)."""

    input: Decimal
    output: Decimal
    batch: bool = False  # True: already the batch price, no discount is applied


def parse_prices(raw: Any, warnings: list[str]) -> dict[str, UserPrice]:
    """The [prices] table: {model: {input = USD/M, output = USD/M, batch = bool}}."""
    prices: dict[str, UserPrice] = {}
    if not isinstance(raw, dict):
        warnings.append("config: [prices] should be a table; ignored")
        return prices
    for model, entry in raw.items():
        if not isinstance(entry, dict):
            warnings.append(f'config: prices."{model}" should be a table; ignored')
            continue
        price_in = parse_money(entry.get("input", 0))
        price_out = parse_money(entry.get("output", 0))
        batch = entry.get("batch", False)
        if price_in is None or price_out is None or not isinstance(batch, bool):
            warnings.append(
                f'config: prices."{model}" needs input and output in USD per million tokens '
                "(numbers, 0 or more) and batch = true/false; ignored"
            )
            continue
        prices[model] = UserPrice(price_in / MILLION, price_out / MILLION, batch)
    return prices


@dataclass
class Config:
    active_profile: str = "default"
    profiles: dict[str, Profile] = field(default_factory=dict)
    poll_interval: float = 10.0
    theme: str = "textual-dark"
    auto_download: bool = True
    notify_command: str | None = None
    prices: dict[str, UserPrice] = field(default_factory=dict)
    # the [prices] table as written, saved back unchanged
    prices_raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    broken: bool = False
    exists: bool = False

    def __post_init__(self) -> None:
        self.profiles.setdefault("default", Profile("default"))
        self.profiles.setdefault(SANDBOX, Profile(SANDBOX, base_url=SANDBOX))

    def profile(self, name: str | None = None) -> Profile:
        name = name or self.active_profile
        if name not in self.profiles:
            raise KeyError_(f"No profile named {name!r}; profiles: {', '.join(self.profiles)}")
        return self.profiles[name]

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "active_profile": self.active_profile,
            "poll_interval": self.poll_interval,
            "theme": self.theme,
            "auto_download": self.auto_download,
        }
        if self.notify_command:
            out["notify_command"] = self.notify_command
        out["profiles"] = {name: p.to_toml() for name, p in self.profiles.items()}
        if self.prices_raw:
            out["prices"] = self.prices_raw
        return out


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any, warnings: list[str]) -> Any:
    value = raw.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        warnings.append(f"config: {key} should be a {kind.__name__}; using {default!r}")
        return default
    return value


def _cost_settings(profile: str, body: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """batch_discount (a share from 0 to 1) and the USD budgets of one profile."""
    out: dict[str, Any] = {}
    if "batch_discount" in body:
        discount = parse_money(body["batch_discount"])
        if discount is None or discount > 1:
            warnings.append(
                f"config: batch_discount of profile {profile!r} should be a share from 0 to 1 "
                "(0.5 = half price); using 0.5"
            )
        else:
            out["batch_discount"] = discount
    for name in ("max_cost_per_batch", "max_cost_per_day"):
        if name in body:
            limit = parse_money(body[name])
            if limit is None:
                warnings.append(
                    f"config: {name} of profile {profile!r} should be an amount in USD; ignored"
                )
            else:
                out[name] = limit
    return out


def parse_token_limit(value: Any) -> int | dict[str, int] | None:
    """A max_enqueued_tokens setting: a positive number, or a table of model -> number.
    None when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, dict) and value:
        limits = {str(k): v for k, v in value.items()}
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in limits.values()):
            return limits
    return None


def _token_settings(profile: str, body: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    if "max_enqueued_tokens" not in body:
        return {}
    limit = parse_token_limit(body["max_enqueued_tokens"])
    if limit is None:
        warnings.append(
            f"config: max_enqueued_tokens of profile {profile!r} should be a positive number "
            "or a table of model = number; ignored"
        )
        return {}
    return {"max_enqueued_tokens": limit}


def profile_for_origin(config: Config, origin: str, preferred: str | None) -> Profile | None:
    """The profile that talks to `origin`: the record's own if it still points there,
    else any profile on that server; the sandbox profile for the sandbox."""
    if origin == SANDBOX_ORIGIN:
        return config.profiles.get(SANDBOX) or Profile(SANDBOX, base_url=SANDBOX)
    for profile in (config.profiles.get(preferred or ""), *config.profiles.values()):
        if (
            profile is not None
            and not profile.is_sandbox
            and origin_for(profile.base_url) == origin
        ):
            return profile
    return None


def parse_config(raw: dict[str, Any]) -> Config:
    warnings: list[str] = []
    profiles: dict[str, Profile] = {}
    raw_profiles = raw.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        warnings.append("config: [profiles] should be a table; ignored")
        raw_profiles = {}
    for name, body in raw_profiles.items():
        if not isinstance(body, dict):
            warnings.append(f"config: profile {name!r} should be a table; ignored")
            continue
        base = body.get("base_url", DEFAULT_BASE_URL)
        profiles[name] = Profile(
            name=name,
            base_url=SANDBOX if base == SANDBOX else normalise_base_url(str(base)),
            api_key=_typed(body, "api_key", str, None, warnings) if "api_key" in body else None,
            api_key_env=str(body["api_key_env"]) if body.get("api_key_env") else None,
            api_key_command=str(body["api_key_command"]) if body.get("api_key_command") else None,
            max_rows=_typed(body, "max_rows", int, DEFAULT_MAX_ROWS, warnings),
            max_bytes=_typed(body, "max_bytes", int, DEFAULT_MAX_BYTES, warnings),
            **_cost_settings(name, body, warnings),
            **_token_settings(name, body, warnings),
        )
    raw_prices = raw.get("prices", {})
    config = Config(
        active_profile=_typed(raw, "active_profile", str, "default", warnings),
        profiles=profiles,
        poll_interval=max(1.0, _typed(raw, "poll_interval", float, 10.0, warnings)),
        theme=_typed(raw, "theme", str, "textual-dark", warnings),
        auto_download=_typed(raw, "auto_download", bool, True, warnings),
        notify_command=_typed(raw, "notify_command", str, "", warnings) or None,
        prices=parse_prices(raw_prices, warnings),
        prices_raw=raw_prices if isinstance(raw_prices, dict) else {},
        warnings=warnings,
    )
    if config.active_profile not in config.profiles:
        warnings.append(f"config: active_profile {config.active_profile!r} does not exist")
        config.active_profile = "default"
    return config


def load_config(paths: Paths | None = None) -> Config:
    """Never raises for a bad file: problems are in `Config.warnings`."""
    paths = paths or get_paths()
    path = paths.config_file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        return Config(warnings=[f"config: cannot read {path}: {exc.strerror}"], broken=True)
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib's message carries "(at line N, column M)".
        config = Config(broken=True, exists=True)
        config.warnings.append(f"config: {path} is not valid TOML: {exc}; using defaults")
        return config
    config = parse_config(raw)
    config.exists = True
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            config.warnings.append(
                f"config: {path} is readable by other users; run: chmod 600 {path}"
            )
    except OSError:
        pass
    return config


def save_config(config: Config, paths: Paths | None = None) -> Path:
    """Atomic write with mode 0600. A broken file is kept aside, never lost."""
    paths = (paths or get_paths()).ensure()
    path = paths.config_file
    if config.broken and path.exists():
        import time

        path.rename(path.with_name(f"config.toml.broken-{int(time.time())}"))
        config.broken = False
    import tomli_w  # writes are rare; reads use the stdlib

    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(tomli_w.dumps(config.to_toml()).encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    config.exists = True
    return path
