"""The model lifecycle: load the champion, keep a local copy, poll the alias, swap atomically.

- **Start** (in the app's lifespan, never at import): resolve ``models:/<name>@<alias>`` to a
  version, download that version's bundle into ``$ENCOUNTERS_HOME/serving/<name>/``, load and
  warm it, then serve it. If the tracking server cannot be reached (or the version will not
  load), serve the last bundle kept there and say so in ``/health``.
- **Poll** (a daemon thread, every ``poll_seconds``): resolve the alias again; when it names
  another version, load and warm that one off to the side, then swap it in with one attribute
  assignment. A request holds a reference to the :class:`~service.served.Served` it started
  with, so it finishes on the old bundle; the next one gets the new.
- **Fail soft**: a failed poll or a version that will not load keeps the current bundle and marks
  the service degraded until a later poll succeeds.
- **Never empty once served**: a worker that has nothing to serve yet looks at the alias when a
  request arrives rather than at its next poll; one look at a time, and a request that arrives
  while one is under way waits for the next. With several workers, the first to load would
  otherwise answer while another still answered 503: the window ``encounters up`` opens when it
  registers the stand-in.

The bundle is read from the registered version's artifacts directly (the pyfunc's
``bundle`` artifact), not through ``mlflow.pyfunc.load_model``: that also prepends the model's
copy of ``forecasting`` to ``sys.path`` on every load, which a long-lived process that swaps
versions should not accumulate.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from forecasting.bundle import Bundle
from service.expensive import ExpensiveWork
from service.history import History
from service.observability import Metrics
from service.served import ModelInfo, Served
from service.settings import Settings

log = logging.getLogger("service")

CURRENT = "current.json"
MLMODEL = "MLmodel"
BUNDLE_ARTIFACT = "bundle"
#: Cached versions kept besides the current one.
KEEP_VERSIONS = 2


class LoadError(RuntimeError):
    """A version could not be resolved, downloaded or loaded; the message says which step."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class BundleCache:
    """The last loaded bundle(s) on local disk: ``<dir>/v<version>.pkl`` + ``current.json``.

    Files are replaced atomically, so two workers of one server can write the same version.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def bundle_path(self, version: str) -> Path:
        return self.folder / f"v{version}.pkl"

    def store(self, downloaded: Path, info: ModelInfo, meta: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.bundle_path(info.version)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.name}.")
        os.close(fd)
        shutil.copyfile(downloaded, tmp)
        os.replace(tmp, target)
        record = {
            "name": info.name,
            "version": info.version,
            "alias": info.alias,
            "run_id": info.run_id,
            "tracking_uri": info.tracking_uri,
            "saved_at": _now().isoformat(timespec="seconds"),
            "bundle": target.name,
            "meta": meta,
        }
        _atomic_write(self.folder / CURRENT, json.dumps(record, indent=2) + "\n")
        self._prune(keep={target.name})
        return target

    def _prune(self, keep: set[str]) -> None:
        older = sorted(
            (p for p in self.folder.glob("v*.pkl") if p.name not in keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for path in older[KEEP_VERSIONS - 1 :]:
            path.unlink(missing_ok=True)

    def load(self) -> tuple[Bundle, dict]:
        """The current cached bundle and its record.

        Raises:
            LoadError: nothing cached, or the cached file does not load.
        """
        record_path = self.folder / CURRENT
        try:
            record = json.loads(record_path.read_text())
            missing = [k for k in ("version", "bundle") if k not in record]
            if missing:
                raise LoadError(f"{record_path} lacks {missing}; it was not written by the service")
            bundle = Bundle.load(self.folder / record["bundle"])
        except FileNotFoundError as exc:
            raise LoadError(f"no cached bundle in {self.folder}") from exc
        except LoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged cache is reported, not raised
            raise LoadError(f"the cached bundle in {self.folder} does not load: {exc}") from exc
        return bundle, record


@dataclass(frozen=True)
class Status:
    """What ``/health`` reports besides the served version."""

    started_at: dt.datetime
    start_error: str | None = None
    last_poll_at: dt.datetime | None = None
    last_poll_error: str | None = None
    load_error: str | None = None  # the alias names a version that would not load


class ModelRegistry:
    """Holds the served bundle; loads, caches, polls and swaps it.

    Args:
        settings: service settings (model name and alias, tracking URI, poll interval, home).
        metrics: where to report the version, swaps and poll errors.
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.tracking_uri = settings.resolved_tracking_uri()
        self.cache = BundleCache(settings.serving_dir / settings.model_name)
        #: The served bundle; replaced whole by one assignment (atomic under the GIL).
        self.current: Served | None = None
        self.status = Status(started_at=_now())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swap_lock = threading.Lock()
        #: One look at the alias at a time, from the poll thread or an empty worker's request.
        self._poll_lock = threading.Lock()
        #: When the last look on demand began (``time.monotonic``).
        self._empty_looked_at = -math.inf
        #: Where refits, sensitivity and uncached counterfactuals and decompositions run.
        self.expensive = ExpensiveWork(
            settings.max_concurrent_fits,
            settings.expensive_queue,
            settings.expensive_timeout_seconds,
        )
        self.history = History(settings.home)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the champion (or the cached bundle), then start polling."""
        self._limit_tracking_calls()
        try:
            self._swap(self._load_from_tracking())
        except LoadError as exc:
            reason = _brief(exc.__cause__ or exc)
            log.warning("could not load %s: %s", self._uri_label(), exc)
            self.status = replace(self.status, start_error=str(exc))
            try:
                bundle, record = self.cache.load()
                info = ModelInfo(
                    name=record.get("name", self.settings.model_name),
                    version=str(record["version"]),
                    alias=record.get("alias", self.settings.model_alias),
                    run_id=record.get("run_id"),
                    source="cache",
                    loaded_at=_now(),
                    tracking_uri=record.get("tracking_uri", ""),
                )
                self._swap(self._served(bundle, info))
            except LoadError as cache_exc:
                log.error("no model to serve: %s; %s", reason, cache_exc)
            else:
                log.warning(
                    "serving the cached bundle, version %s (saved %s)",
                    info.version,
                    record.get("saved_at"),
                )
        self._warm_history()
        if self.settings.poll_seconds > 0:
            self._thread = threading.Thread(
                target=self._poll_loop, name="champion-poll", daemon=True
            )
            self._thread.start()

    def _warm_history(self) -> None:
        # Splitting the store's panel into per-series rows takes about half a second; done here,
        # before the worker accepts connections, not in the first page load it serves.
        try:
            self.history.keys()
        except Exception as exc:  # noqa: BLE001 - /health reports a broken store; serve the rest
            log.warning("could not read the observed history: %s", _brief(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the poll must outlive any one failure
                log.exception(
                    "poll failed unexpectedly; trying again in %ss", self.settings.poll_seconds
                )

    def ensure_served(self) -> Served | None:
        """The served bundle; when there is none, one prompt look at the alias first.

        Blocking (run it off the event loop). Requests that arrive during a look wait for one
        that begins after them, and share it; with polling off (``poll_seconds`` 0) the alias
        is never looked at again.
        """
        arrived = time.monotonic()
        if self.current is not None or self.settings.poll_seconds <= 0:
            return self.current
        with self._poll_lock:
            # A look that began after this request arrived has answered it already.
            if self.current is None and self._empty_looked_at < arrived:
                self._empty_looked_at = time.monotonic()
                try:
                    self._poll_locked()
                except Exception:  # noqa: BLE001 - the request gets its 503, the poll goes on
                    log.exception("loading on demand failed unexpectedly")
        return self.current

    def poll_once(self) -> bool:
        """Look at the alias once; swap when it names another version. True if it swapped."""
        with self._poll_lock:
            return self._poll_locked()

    def _poll_locked(self) -> bool:
        now = _now()
        try:
            version = self._resolve()
        except LoadError as exc:
            self.metrics.poll_errors.inc()
            self.status = replace(self.status, last_poll_at=now, last_poll_error=str(exc))
            log.warning("poll failed: %s", exc)
            self._report()
            return False
        self.status = replace(self.status, last_poll_at=now, last_poll_error=None)
        served = self.current
        if served is not None and served.version == str(version.version):
            if served.info.source == "cache":
                # The cached copy is the champion: it now counts as confirmed.
                served.info = replace(served.info, source="tracking")
                self.status = replace(self.status, start_error=None)
            self.status = replace(self.status, load_error=None)
            self._report()
            return False
        try:
            new = self._load_version(version)
        except LoadError as exc:
            self.metrics.poll_errors.inc()
            self.status = replace(self.status, load_error=str(exc))
            log.error("%s", exc)
            self._report()
            return False
        self._swap(new)
        self.metrics.swaps.inc()
        self.status = replace(self.status, load_error=None, start_error=None)
        self._report()
        return True

    # -- loading -------------------------------------------------------------------------------

    def _limit_tracking_calls(self) -> None:
        # MLflow's HTTP client retries for minutes by default; the service would rather fall
        # back to its cache at start and try again at the next poll. An explicit environment
        # setting wins.
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(self.settings.tracking_timeout_seconds))
        )
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.settings.tracking_retries)
        )
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        # A progress bar per downloaded file is noise in a server's log.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.tracking_uri, self.tracking_uri)

    def _uri_label(self) -> str:
        return f"models:/{self.settings.model_name}@{self.settings.model_alias}"

    def _resolve(self):
        try:
            return self._client().get_model_version_by_alias(
                self.settings.model_name, self.settings.model_alias
            )
        except Exception as exc:  # noqa: BLE001 - any failure to reach or read the registry
            raise LoadError(
                f"cannot resolve {self._uri_label()} at {self._safe_uri()}: {_brief(exc)}"
            ) from exc

    def _safe_uri(self) -> str:
        # Never echo credentials a URI may carry (user:password@host).
        uri = self.tracking_uri
        if "@" in uri and "://" in uri:
            scheme, rest = uri.split("://", 1)
            return f"{scheme}://{rest.split('@', 1)[1]}"
        return uri

    def _load_from_tracking(self) -> Served:
        return self._load_version(self._resolve())

    def _load_version(self, version) -> Served:
        """Download, cache, load and warm one registered version."""
        import mlflow.artifacts

        name, number = self.settings.model_name, str(version.version)
        label = f"{name} version {number}"
        try:
            client = self._client()
            root = client.get_model_version_download_uri(name, number).rstrip("/")
            with tempfile.TemporaryDirectory(prefix="encounters-download-") as tmp:
                mlmodel = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{root}/{MLMODEL}", dst_path=tmp, tracking_uri=self.tracking_uri
                )
                relative = _bundle_path(Path(mlmodel))
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{root}/{relative}",
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
                bundle = Bundle.load(local)
                info = ModelInfo(
                    name=name,
                    version=number,
                    alias=self.settings.model_alias,
                    run_id=version.run_id,
                    source="tracking",
                    loaded_at=_now(),
                    tracking_uri=self._safe_uri(),
                )
                try:
                    self.cache.store(Path(local), info, dict(version.tags or {}))
                except OSError as exc:
                    log.warning("could not keep a local copy of %s: %s", label, exc)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the current bundle stays
            raise LoadError(f"{label} failed to load: {_brief(exc)}") from exc
        served = self._served(bundle, info)
        log.info("loaded %s (%d series)", label, len(bundle.keys))
        return served

    def _served(self, bundle: Bundle, info: ModelInfo) -> Served:
        settings = self.settings
        served = Served(
            bundle,
            info,
            settings.response_cache_size,
            settings.chart_cache_size,
            settings.response_cache_bytes,
            settings.chart_cache_bytes,
        )
        try:
            return served.warm(self.settings.warm_counterfactuals)
        except Exception as exc:  # noqa: BLE001 - a bundle that cannot forecast is not served
            raise LoadError(
                f"{info.name} version {info.version} failed to warm up: {_brief(exc)}"
            ) from exc

    def _swap(self, served: Served) -> None:
        with self._swap_lock:
            old = self.current
            self.current = served
        if old is not None:
            log.info("now serving version %s (was %s)", served.version, old.version)
        self._report()

    # -- reporting -----------------------------------------------------------------------------

    def degraded_reasons(self) -> list[str]:
        served, status = self.current, self.status
        reasons = []
        if served is None:
            reasons.append(
                "no model loaded: " + (status.start_error or status.load_error or "not started")
            )
            return reasons
        if served.info.source == "cache":
            reasons.append(
                f"serving the locally cached bundle (version {served.version}): at start "
                f"{status.start_error or 'the tracking server could not be reached'}"
            )
        if status.last_poll_error:
            reasons.append(
                f"the last poll of the registry failed ({status.last_poll_error}); serving "
                f"version {served.version}"
            )
        if status.load_error:
            reasons.append(f"{status.load_error}; serving version {served.version}")
        if broken := self.history.broken():
            reasons.append(broken)
        return reasons

    def _report(self) -> None:
        served = self.current
        version = int(served.version) if served and served.version.isdigit() else 0
        self.metrics.model_version.labels(self.settings.model_name, self.settings.model_alias).set(
            version
        )
        if served is not None:
            self.metrics.model_loaded.set(served.info.loaded_at.timestamp())
        self.metrics.degraded.set(1 if self.degraded_reasons() else 0)


def _bundle_path(mlmodel: Path) -> str:
    """The bundle artifact's path inside the model folder, from the pyfunc flavour's config."""
    conf = yaml.safe_load(mlmodel.read_text())
    try:
        return conf["flavors"]["python_function"]["artifacts"][BUNDLE_ARTIFACT]["path"]
    except (KeyError, TypeError) as exc:
        raise LoadError(
            f"the model has no '{BUNDLE_ARTIFACT}' pyfunc artifact: it is not a forecasting bundle"
        ) from exc
