"""Run one function over many tasks: in-process, on a local process pool, or on Dask.

The choice is configuration (``--executor local|dask|dask://HOST:PORT``); results come back in
task order whatever the engine, so the same inputs give the same training on each.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from forecasting.errors import DataError

log = logging.getLogger(__name__)
EXECUTORS = "local, dask (a LocalCluster of worker processes) or dask://HOST:PORT"


def _progress(total: int) -> Callable[[str], None]:
    """A progress bar on a terminal; plain log lines otherwise (scheduled jobs, CI)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="series", file=sys.stderr)

        def tick(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update()
            if bar.n == total:
                bar.close()

        return tick
    done = [0]

    def line(name: str) -> None:
        done[0] += 1
        log.info("trained %s (%d/%d)", name, done[0], total)

    return line


def _counted(total: int, progress: Callable[[int, int, str], None]) -> Callable[[str], None]:
    done = [0]

    def tick(name: str) -> None:
        done[0] += 1
        progress(done[0], total, name)

    return tick


def _collect(futures: dict, tasks: Sequence, completed: Iterable, label, tick) -> list[Any]:
    results: list[Any] = [None] * len(tasks)
    for future in completed:
        i = futures[future]
        try:
            results[i] = future.result()
        except Exception as exc:  # noqa: BLE001 - a task's failure is returned, not raised
            results[i] = exc
        tick(label(tasks[i]))
    return results


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    executor: str = "local",
    workers: int = 2,
    label: Callable[[Any], str] = str,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Any]:
    """``[fn(t) for t in tasks]`` on the chosen engine; a task that raises yields its exception.

    Args:
        fn: a module-level (picklable) function.
        tasks: its inputs.
        executor: ``local`` (a process pool of ``workers``, or in-process when ``workers`` is 1),
            ``dask`` (a Dask LocalCluster with ``workers`` worker processes) or
            ``dask://HOST:PORT`` (an existing Dask scheduler).
        workers: processes to use locally.
        label: names a task in progress output.
        progress: told ``(done, total, label)`` as each task ends, instead of the default
            progress bar or log line.
    """
    tick = _progress(len(tasks)) if progress is None else _counted(len(tasks), progress)
    if executor == "local":
        if workers <= 1:
            out = []
            for task in tasks:
                try:
                    out.append(fn(task))
                except Exception as exc:  # noqa: BLE001
                    out.append(exc)
                tick(label(task))
            return out
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
            return _collect(futures, tasks, as_completed(futures), label, tick)
    if executor == "dask" or executor.startswith("dask://"):
        return _run_dask(fn, tasks, executor, workers, label, tick)
    raise DataError(f"unknown executor {executor!r}; accepted: {EXECUTORS}")


def _run_dask(fn, tasks, executor, workers, label, tick) -> list[Any]:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    if executor == "dask":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        cluster = None
        client = Client("tcp://" + executor.removeprefix("dask://"))
    try:
        # pure=False: every task runs, even two that look alike.
        futures = {client.submit(fn, t, pure=False): i for i, t in enumerate(tasks)}
        return _collect(futures, tasks, dask_completed(list(futures)), label, tick)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
