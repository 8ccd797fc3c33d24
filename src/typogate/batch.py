"""Batch work cut into partitions, run where the admin chose: on this machine's cores or on
a Dask cluster (a scheduler's, or a LocalCluster started for the run).

The audit and the monitor share it. Results come back in partition order, whatever order
the workers finish in, so both engines give identical answers on the same input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol, TypeVar

from typogate.vocabulary import Engine

Item = TypeVar("Item")
Result = TypeVar("Result")


class Workers(Protocol):
    """Runs one function over partitions, in order, wherever the work runs."""

    def map(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        progress: Callable[[Item], None] | None = None,
        **shared: Any,
    ) -> list[Result]:
        """``function(item, **shared)`` for every item, the results in the items' order;
        ``progress(item)`` as each is done."""
        ...


class _Local:
    """In this process, or in ``count`` processes of this machine once there is more than
    one partition (the pool is made on first need and kept for the run's later passes)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool: Executor | None = None

    def map(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        progress: Callable[[Item], None] | None = None,
        **shared: Any,
    ) -> list[Result]:
        call = partial(function, **shared)
        if self.pool is None and self.count > 1 and len(items) > 1:
            self.pool = ProcessPoolExecutor(max_workers=self.count)
        mapped = self.pool.map(call, items) if self.pool is not None else map(call, items)
        results = []
        for item, result in zip(items, mapped, strict=True):
            results.append(result)
            if progress is not None:
                progress(item)
        return results


class _Dask:
    """On a Dask cluster: every worker gets the function, the partition and ``shared``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def map(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        progress: Callable[[Item], None] | None = None,
        **shared: Any,
    ) -> list[Result]:
        from dask.distributed import as_completed

        futures = self.client.map(function, items, pure=False, **shared)
        if progress is not None:
            index = {future.key: n for n, future in enumerate(futures)}
            for future in as_completed(futures):
                progress(items[index[future.key]])
        results: list[Result] = self.client.gather(futures)
        return results


@contextmanager
def workers(engine: Engine, count: int | None, scheduler: str | None = None) -> Iterator[Workers]:
    """Where a run's partitions go: ``count`` processes here (default: every core), or
    the Dask cluster at ``scheduler`` (tcp://HOST:PORT), else a LocalCluster of ``count``
    worker processes on loopback. Everything started is stopped when the block ends."""
    cores = count or os.cpu_count() or 1
    if engine is Engine.LOCAL:
        local = _Local(cores)
        try:
            yield local
        finally:
            if local.pool is not None:
                local.pool.shutdown()
        return
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=cores,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        yield _Dask(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
