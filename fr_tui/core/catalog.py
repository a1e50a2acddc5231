"""The model catalog: what a server's `GET /v1/models` says about each model, cached.

FastRouter publishes its models at `/v1/models` (public): `id`, `context_length`,
`top_provider.max_completion_tokens`, `is_active` and, like similar routers, `pricing`.
Answers are read defensively: a list under `data` (or `models`, or the bare list), and an
entry without a usable `id` is skipped and counted, never a crash. Prices are read as:

* `pricing.prompt` / `pricing.completion` (OpenRouter's names) or `pricing.input` /
  `pricing.output`, as numbers or numeric strings;
* USD per token when below 0.001, else USD per million tokens. No model costs $1,000 per
  million tokens, and none costs less than $0.001 per million, so the two readings never
  meet; a negative price (OpenRouter's "-1" for "varies") means no price.

The answer is cached per server ("origin": `sandbox` for the embedded sandbox, else the
base URL) in `<config dir>/catalog/<origin>.json` with the time it was fetched. A cache
younger than a day is used as it is; an older one is used while a fresh copy is fetched
in the background; with no cache, one fetch is tried with a short timeout, and a failed
fetch is not retried for ten minutes. `FR_TUI_CATALOG=cache` never fetches over the
network (offline use; the embedded sandbox's catalog is local data and still read),
`FR_TUI_CATALOG=off` turns the catalog off.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.config import MILLION
from fr_tui.core.paths import Paths
from fr_tui.core.units import parse_money

log = logging.getLogger("fr_tui.catalog")

MAX_AGE = 24 * 3600.0
RETRY_FAILED_AFTER = 600.0
FETCH_TIMEOUT = 3.0
CATALOG_ENV = "FR_TUI_CATALOG"
_PER_TOKEN_BELOW = Decimal("0.001")


class CatalogError(ValueError):
    """An answer that is not a model list at all."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    context_length: int | None = None
    max_completion_tokens: int | None = None
    active: bool = True
    input_price: Decimal | None = None  # USD per token, list price (before any discount)
    output_price: Decimal | None = None

    @property
    def priced(self) -> bool:
        return self.input_price is not None


@dataclass
class Catalog:
    origin: str
    models: dict[str, ModelInfo]
    fetched_at: float
    skipped: int = 0  # entries of the answer that could not be read
    _ids_by_name: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def get(self, model: str) -> ModelInfo | None:
        """The model, also under a routing suffix (`openai/gpt-4.1-nano:online`)."""
        info = self.models.get(model)
        if info is None and ":" in model:
            info = self.models.get(model.partition(":")[0])
        return info

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)

    def stale(self, now: float | None = None) -> bool:
        return self.age(now) > MAX_AGE

    def suggestions(self, model: str, n: int = 3) -> list[str]:
        """The closest active model ids, for "did you mean ...?"."""
        active = [m.id for m in self.models.values() if m.active]
        found = difflib.get_close_matches(model, active, n, cutoff=0.6)
        # A bare name ("gpt-4.1-nano") is compared with the names after the prefix too.
        name = model.rpartition("/")[2]
        if not self._ids_by_name:
            for model_id in active:
                self._ids_by_name.setdefault(model_id.rpartition("/")[2], []).append(model_id)
        for close in difflib.get_close_matches(name, list(self._ids_by_name), n, cutoff=0.7):
            for model_id in self._ids_by_name[close]:
                if model_id not in found:
                    found.append(model_id)
        return found[:n]


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value == value and 0 < value < 1e15:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _per_token(value: Any) -> Decimal | None:
    amount = parse_money(value)
    if amount is None:
        return None
    return amount if amount < _PER_TOKEN_BELOW else amount / MILLION


def parse_model(entry: Any) -> ModelInfo | None:
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        return None
    top = entry.get("top_provider")
    top = top if isinstance(top, dict) else {}
    active = entry.get("is_active", entry.get("active", True))
    pricing = entry.get("pricing")
    pricing = pricing if isinstance(pricing, dict) else {}
    price_in = _per_token(pricing.get("prompt", pricing.get("input")))
    price_out = _per_token(pricing.get("completion", pricing.get("output")))
    if price_in is not None and price_out is None:
        price_out = Decimal(0)  # an embedding model: input only
    return ModelInfo(
        id=model_id.strip(),
        context_length=_positive_int(entry.get("context_length"))
        or _positive_int(top.get("context_length")),
        max_completion_tokens=_positive_int(top.get("max_completion_tokens"))
        or _positive_int(entry.get("max_completion_tokens")),
        active=active is not False and active not in (0, "false", "inactive"),
        input_price=price_in,
        output_price=price_out if price_in is not None else None,
    )


def parse_catalog(data: Any, origin: str, fetched_at: float) -> Catalog:
    """Read a `/v1/models` answer. Raises CatalogError when it is not a model list."""
    items = data
    if isinstance(data, dict):
        items = data.get("data", data.get("models"))
    if not isinstance(items, list):
        raise CatalogError("the answer has no list of models")
    models: dict[str, ModelInfo] = {}
    skipped = 0
    for entry in items:
        info = parse_model(entry)
        if info is None:
            skipped += 1
        else:
            models[info.id] = info
    return Catalog(origin=origin, models=models, fetched_at=fetched_at, skipped=skipped)


# -- where it is kept ---------------------------------------------------------------


def provider_of(model: str) -> str:
    """The provider part of a `provider/model` name ("" for a bare name)."""
    return model.partition("/")[0] if "/" in model else ""


def cache_path(paths: Paths, origin: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-." else "_" for c in origin)
    return paths.config_dir / "catalog" / f"{slug}.json"


def load_cached(paths: Paths, origin: str) -> Catalog | None:
    """The cached catalog, or None (none yet, or unreadable: the next fetch replaces it)."""
    path = cache_path(paths, origin)
    try:
        doc = msgspec.json.decode(path.read_bytes())
        fetched_at = float(doc["fetched_at"])
        return parse_catalog(doc["data"], origin, fetched_at)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, RecursionError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the unreadable catalog cache %s: %s", path, exc)
        return None


def save_cache(paths: Paths, origin: str, data: Any, fetched_at: float) -> Path:
    """Write the answer atomically (a reader never sees half a file)."""
    path = cache_path(paths, origin)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(msgspec.json.encode({"origin": origin, "fetched_at": fetched_at, "data": data}))
    os.replace(tmp, path)
    path.with_suffix(".failed").unlink(missing_ok=True)
    return path


def _recent_failure(paths: Paths, origin: str, now: float) -> str | None:
    """Why the last fetch failed, if it failed less than RETRY_FAILED_AFTER ago."""
    marker = cache_path(paths, origin).with_suffix(".failed")
    try:
        ago = now - marker.stat().st_mtime
        if ago >= RETRY_FAILED_AFTER:
            return None
        reason = marker.read_text().strip() or "failed"
    except OSError:
        return None
    return f"{reason}; tried {max(1, round(ago / 60))} min ago, again after 10 min"


def _mark_failed(paths: Paths, origin: str, message: str) -> None:
    try:
        marker = cache_path(paths, origin).with_suffix(".failed")
        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker.write_text(message + "\n")
    except OSError:
        pass


# -- getting it ---------------------------------------------------------------------


Source = Callable[[], Any]
"""Returns a `/v1/models` answer; raises on failure."""


def http_source(base_url: str, api_key: str = "", timeout: float = FETCH_TIMEOUT) -> Source:
    """Fetch over HTTP with the API client, on a short leash (one retry at most)."""

    def fetch() -> Any:
        import asyncio

        from fr_tui.core.api import BatchClient

        async def go() -> Any:
            async with BatchClient(
                base_url,
                api_key,
                connect_timeout=min(2.0, timeout),
                read_timeout=timeout,
                retry_budget=timeout,
                max_attempts=2,
                backoff_base=0.2,
            ) as client:
                return await asyncio.wait_for(client.list_models(), timeout)

        return asyncio.run(go())

    return fetch


class CatalogLoader:
    """Gets one server's catalog from the cache, the network, or both (see the module
    docstring for when). Safe to use from a worker thread; never raises."""

    def __init__(
        self,
        paths: Paths,
        origin: str,
        source: Source | None,
        *,
        local: bool = False,
        mode: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.paths = paths
        self.origin = origin
        self.source = source
        self.local = local  # the source is local data (the embedded sandbox), not the network
        self.mode = (mode or os.environ.get(CATALOG_ENV) or "auto").strip().lower()
        self.now = now
        self.error: str | None = None  # why the last fetch failed
        self._refresh: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def can_fetch(self) -> bool:
        """FR_TUI_CATALOG=cache forbids the network, not local data."""
        return self.enabled and self.source is not None and (self.mode != "cache" or self.local)

    def cached(self) -> Catalog | None:
        return load_cached(self.paths, self.origin) if self.enabled else None

    def fetch(self) -> Catalog | None:
        """One fetch now; the cache is replaced when it works."""
        if not self.can_fetch:
            return None
        assert self.source is not None
        try:
            data = self.source()
            fetched_at = self.now()
            catalog = parse_catalog(data, self.origin, fetched_at)
        except Exception as exc:  # any failure means "no fresh catalog", never a crash
            self.error = str(exc) or type(exc).__name__
            log.info("model catalog of %s not fetched: %s", self.origin, self.error)
            _mark_failed(self.paths, self.origin, self.error)
            return None
        try:
            save_cache(self.paths, self.origin, data, fetched_at)
        except OSError as exc:
            log.warning("cannot cache the model catalog: %s", exc)
        self.error = None
        return catalog

    def load(self, *, block: bool = True) -> Catalog | None:
        """The catalog to use now: a fresh cache as it is; a stale one at once, refreshed
        in the background; none cached: one fetch (in the background unless `block`),
        unless one failed a moment ago."""
        cached = self.cached()
        if cached is not None:
            if cached.stale(self.now()):
                self.refresh_in_background()
            return cached
        if not self.can_fetch:
            return None
        self.error = _recent_failure(self.paths, self.origin, self.now())
        if self.error:
            return None
        if not block:
            self.refresh_in_background()
            return None
        return self.fetch()

    def refresh_in_background(self) -> None:
        """Fetch in a thread, unless one is running or a fetch failed a moment ago."""
        if not self.can_fetch:
            return
        if self._refresh is not None and self._refresh.is_alive():
            return
        if _recent_failure(self.paths, self.origin, self.now()):
            return
        self._refresh = threading.Thread(target=self.fetch, name="fr-tui-catalog", daemon=True)
        self._refresh.start()

    def wait(self, timeout: float) -> None:
        """Give a background refresh a moment to land (a CLI command about to exit)."""
        if self._refresh is not None:
            self._refresh.join(timeout)
