"""Running a check over a data set: chunks, shards, local processes or a cluster.

Samples are cut into chunks aligned to global sample indices (chunk ``k`` is samples
``[k * batch_size, (k + 1) * batch_size)``), so a chunk is the same computation whatever runs it:
the float reference's sums depend on the batch it runs in, and aligned chunks make a report
independent of how the samples are sharded. Each chunk is evaluated independently
(:func:`evaluate_chunk`: float reference and emulator on the chunk, a :class:`~.metrics.Tally`
of it) and tallies merge exactly. Peak memory is one chunk's traces per process.

Executors: ``serial``; ``pool`` (``workers`` local processes of the standard library's process
pool, forked); ``dask`` (an existing Dask distributed cluster, ``cluster="tcp://host:8786"`` or
a ``Client``, or ``"local:N"``: a LocalCluster of N processes started for the run). Dask is the
cluster engine: it runs on a workstation, on Slurm/PBS/SGE/LSF through dask-jobqueue and on
Kubernetes, installs in 35 MB and starts in seconds (:data:`DASK_SETTINGS` turns off what slowed
the emulator). Every worker builds the networks once from their serialised form (the compiled
network's JSON + npz, not by quantizing again). A failing chunk is retried once and then
reported with its sample range; nothing is dropped silently (the report states the samples).
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass

import numpy as np

from ..compare import pad_for_latency
from ..errors import SnnCompileError
from ..ir.fixed import QNetwork
from ..ir.fixed_io import network_files, network_from_files
from ..ir.graph import Graph
from .metrics import ClassTally, LayerTally, Tally

CHUNK_BYTES = 192 << 20  # traces of one chunk, both sides (sets the default batch size)
MAX_BATCH = 256


@dataclass(frozen=True)
class Job:
    """Everything a worker needs (pickled once per worker)."""

    graph: Graph
    network_files: dict
    tolerance: int
    keep: tuple = ()          # global indices of samples whose traces are kept (plots)
    threads: int | None = None  # torch threads in the process that runs chunks (None: as is)

    @classmethod
    def make(cls, graph: Graph, net: QNetwork, tolerance: int, keep=(), threads=None) -> "Job":
        return cls(graph, network_files(net), tolerance, tuple(keep), threads)


_CACHE: dict = {}  # per process: the job's network, built once


def _network(job: Job) -> QNetwork:
    key = id(job.network_files)
    if _CACHE.get("key") != key:
        _CACHE.clear()
        _CACHE.update(key=key, net=network_from_files(job.network_files))
        _set_threads(job.threads)
    return _CACHE["net"]


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import torch

    torch.set_num_threads(max(1, int(threads)))


def default_batch_size(net: QNetwork, steps: int) -> int:
    """Samples per chunk so that a chunk's traces stay within :data:`CHUNK_BYTES`."""
    neurons = sum(p.size for p in net.populations) + net.input.size
    per_sample = (steps + net.max_lag) * neurons * 28  # float v, spikes + fixed u, v, spikes
    return int(max(1, min(MAX_BATCH, CHUNK_BYTES // max(per_sample, 1))))


def chunk_ranges(samples: int, batch_size: int, first: int = 0) -> list[tuple[int, int]]:
    """Chunks of samples ``first..samples``, aligned to ``first``."""
    return [(s, min(s + batch_size, samples)) for s in range(first, samples, batch_size)]


def shard_chunks(chunks: list, shard: tuple[int, int] | None) -> list:
    """Chunks of shard ``i`` of ``n`` (contiguous, balanced), or all."""
    if shard is None:
        return chunks
    i, n = shard
    lo, hi = (len(chunks) * i) // n, (len(chunks) * (i + 1)) // n
    return chunks[lo:hi]


def new_tally(net: QNetwork) -> Tally:
    layers = {p.name: LayerTally(name=p.name, offset=p.lag) for p in net.float_counterparts()
              if p.neuron.spiking}
    return Tally(layers=layers, classes=ClassTally(classes=net.output_population.size))


def evaluate_chunk(job: Job, spikes: np.ndarray, labels, first: int) -> tuple[Tally, dict]:
    """Float reference and emulator on one chunk; its tally and the kept samples' traces."""
    from ..emulator import run_network
    from ..reference import simulate
    from ..compare import predictions
    from ..trace import Trace

    net = _network(job)
    steps, batch = spikes.shape[:2]
    float_trace = simulate(job.graph, spikes)
    fixed_trace = run_network(net, pad_for_latency(spikes, net))
    tally = new_tally(net)
    tally.chunks.append((first, first + batch))
    differing = np.zeros(batch, np.int64)
    for name, layer in tally.layers.items():
        pop = net.population(name)
        f = np.asarray(float_trace.layers[name]["spikes"])[:steps]
        q = np.asarray(fixed_trace.layers[name]["spikes"])[pop.lag:pop.lag + steps]
        f, q = f.reshape(steps, batch, -1), q.reshape(steps, batch, -1)
        fv = np.asarray(float_trace.layers[name]["v"])[:steps].reshape(steps, batch, -1)
        qv = np.asarray(fixed_trace.layers[name]["v"])[pop.lag:pop.lag + steps].reshape(
            steps, batch, -1)
        layer.add(f, q, first, job.tolerance, fv, qv, pop.scale)
        differing += (f != q).sum(axis=(0, 2))
    tally.add_worst(first, differing)
    out = net.output_population
    key = "spikes" if out.neuron.spiking else "v"
    pred_f = predictions(Trace(output=float_trace.layers[out.name][key]))
    pred_q = predictions(Trace(output=fixed_trace.layers[out.name][key]), steps, out.lag,
                         scale=1.0 if out.neuron.spiking else out.scale)
    tally.classes.add(pred_f, pred_q, labels)
    kept = {}
    for index in job.keep:
        if first <= index < first + batch:
            b = index - first
            kept[index] = {name: {"float": np.asarray(float_trace.layers[name]["spikes"])
                                  [:steps, b].copy(),
                                  "fixed": np.asarray(fixed_trace.layers[name]["spikes"])
                                  [net.population(name).lag:net.population(name).lag + steps,
                                   b].copy()}
                           for name in tally.layers}
    return tally, kept


# ----------------------------------------------------------------------------- executors

@dataclass
class Progress:
    """Samples done and an ETA on stderr (kept on screen); silent when not a terminal."""

    total: int
    label: str
    enabled: bool = True

    def __post_init__(self):
        self.bar = None
        if self.enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, desc=self.label, unit="sample", disable=None,
                            leave=True, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_chunks(job: Job, source, chunks: list, *, workers: int = 1, cluster=None,
               progress: bool = True) -> tuple[Tally, dict, dict]:
    """Evaluate ``chunks`` of ``source``; (merged tally, kept traces, engine info)."""
    samples = sum(b - a for a, b in chunks)
    bar = Progress(samples, "check (float vs emulator)", progress)
    start = time.perf_counter()
    try:
        if cluster is not None:
            tally, kept, info = _run_dask(job, source, chunks, cluster, bar)
        elif workers > 1:
            tally, kept, info = _run_pool(job, source, chunks, workers, bar)
        else:
            tally, kept, info = _run_serial(job, source, chunks, bar)
    finally:
        bar.close()
    info["seconds"] = time.perf_counter() - start
    info["samples_per_s"] = samples / info["seconds"] if info["seconds"] else None
    return tally, kept, info


def _merge_into(total: Tally | None, part: Tally) -> Tally:
    return part if total is None else total.merge(part)


def _run_serial(job, source, chunks, bar):
    tally, kept = None, {}
    for a, b in chunks:
        spikes, labels = source.read(a, b)
        part, keep = evaluate_chunk(job, spikes, labels, a)
        tally = _merge_into(tally, part)
        kept.update(keep)
        bar.update(b - a)
    return tally, kept, {"engine": "serial", "workers": 1}


_WORKER: dict = {}


def _pool_init(job_bytes: bytes, source_bytes: bytes) -> None:
    _WORKER["job"] = pickle.loads(job_bytes)
    _WORKER["source"] = pickle.loads(source_bytes)
    _set_threads(_WORKER["job"].threads or 1)  # workers share the cores: one thread each


def _pool_task(chunk):
    a, b = chunk
    spikes, labels = _WORKER["source"].read(a, b)
    return evaluate_chunk(_WORKER["job"], spikes, labels, a)


def _run_pool(job, source, chunks, workers, bar):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    tally, kept = None, {}
    args = (pickle.dumps(job), pickle.dumps(_shippable(source)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pool_init,
                             initargs=args) as pool:
        futures = {pool.submit(_pool_task, c): c for c in chunks}
        for future in as_completed(futures):
            chunk = futures[future]
            try:
                part, keep = future.result()
            except Exception as exc:  # retry once in this process, then report the chunk
                part, keep = _retry(job, source, chunk, exc)
            tally = _merge_into(tally, part)
            kept.update(keep)
            bar.update(chunk[1] - chunk[0])
    return tally, kept, {"engine": "pool", "workers": workers}


def _retry(job, source, chunk, exc):
    a, b = chunk
    try:
        spikes, labels = source.read(a, b)
        return evaluate_chunk(job, spikes, labels, a)
    except SnnCompileError:
        raise
    except Exception as again:
        raise SnnCompileError(f"checking samples {a}..{b - 1} failed twice "
                              f"({type(exc).__name__}: {exc}; then {type(again).__name__})",
                              hint="run with --workers 1 --debug to see the error") from again


def _shippable(source):
    """The source as something a worker can open again (paths), or the arrays themselves."""
    from .data import ArraySource, DataSource

    if isinstance(source, ArraySource) or not isinstance(source, DataSource):
        return source
    return _Reopen([p.path for p in source.parts])


@dataclass
class _Reopen:
    """A data source a worker opens by itself (a shared file system)."""

    paths: list

    def read(self, a: int, b: int):
        from .data import open_data

        if not hasattr(self, "_source"):
            object.__setattr__(self, "_source", open_data(self.paths))
        return self._source.read(a, b)

    def __getstate__(self):
        return {"paths": self.paths}

    def __setstate__(self, state):
        self.paths = state["paths"]


def _dask_task(job, source, chunk):
    a, b = chunk
    spikes, labels = source.read(a, b)
    return evaluate_chunk(job, spikes, labels, a)


#: Dask settings for the emulator's workload: the worker profiler and the nanny's
#: MALLOC_TRIM_THRESHOLD_=65536 each doubled its CPU time on this project's measurements.
DASK_SETTINGS = {"distributed.worker.profile.enabled": False,
                 "distributed.nanny.pre-spawn-environ": {}}


def local_cluster(spec: str):
    """A Dask LocalCluster for ``--cluster local`` or ``local:N`` (N worker processes, one thread
    each, no dashboard, temporary files in the system's temporary folder)."""
    import tempfile

    import dask
    from distributed import LocalCluster

    _, _, count = spec.partition(":")
    try:
        workers = int(count) if count else max(1, os.cpu_count() or 1)
    except ValueError:
        workers = 0
    if workers < 1:
        raise SnnCompileError("--cluster local:N needs a positive number of workers",
                              value=spec, hint="e.g. --cluster local:2")
    tmp = tempfile.gettempdir()
    with dask.config.set({**DASK_SETTINGS, "temporary-directory": tmp}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, local_directory=tmp, silence_logs=40)


def _client(cluster):
    """``(client, what to close)`` for a Client, a scheduler address or ``local[:N]``."""
    import dask
    from distributed import Client

    if isinstance(cluster, Client):
        return cluster, []
    if isinstance(cluster, str) and (cluster == "local" or cluster.startswith("local:")):
        local = local_cluster(cluster)
        client = Client(local)
        return client, [client, local]
    with dask.config.set(DASK_SETTINGS):
        client = Client(cluster, timeout="30s")
    return client, [client]


def _run_dask(job, source, chunks, cluster, bar):
    try:
        from distributed import as_completed
    except ImportError:
        raise SnnCompileError("--cluster runs on Dask distributed, which is not installed",
                              hint="pip install 'snn-compile[cluster]'") from None

    client, owned = _client(cluster)
    try:
        job_f = client.scatter(job, broadcast=True)
        src_f = client.scatter(_shippable(source), broadcast=True)
        futures = {client.submit(_dask_task, job_f, src_f, c, retries=1, pure=False): c
                   for c in chunks}
        tally, kept = None, {}
        for future in as_completed(list(futures)):
            chunk = futures[future]
            if future.status == "error":
                exc = future.exception()
                raise SnnCompileError(f"checking samples {chunk[0]}..{chunk[1] - 1} failed on "
                                      f"the cluster ({type(exc).__name__}: {exc})")
            part, keep = future.result()
            tally = _merge_into(tally, part)
            kept.update(keep)
            bar.update(chunk[1] - chunk[0])
        workers = len(client.scheduler_info().get("workers", {}))
    finally:
        for thing in owned:
            thing.close()
    return tally, kept, {"engine": "dask", "workers": workers}


