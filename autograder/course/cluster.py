"""The Dask cluster a class run grades on: a local one on loopback over TLS, or the instructor's own.

A local cluster's workers are single-threaded processes that listen on loopback only, over TLS with a
certificate made for the run (``Security.temporary``), and serve no HTTP routes unless the dashboard is asked
for; an existing cluster must be a ``tls://`` address with the instructor's certificate files.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def local_security():
    """TLS for one local class run: a key and certificate made for it (distributed's ``Security.temporary``).

    They exist only in this process's memory and the workers' (handed over by their nannies, never on a
    command line); every connection must present that certificate (``require_encryption``, client
    certificates required both ways), so a client without it, another user's included, is refused.
    """
    from distributed.security import Security

    return Security.temporary()


def write_certificates(folder: str | Path) -> dict[str, Path]:
    """A key and certificate for an instructor's own cluster (scheduler, workers and this client alike), into
    `folder`, made private (0700, files 0600): ca.pem, cert.pem, key.pem. Whoever can read key.pem can run code
    on that cluster."""
    made = local_security()
    folder = Path(folder).expanduser()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths = {}
    for name, text in (("ca.pem", made.tls_ca_file), ("cert.pem", made.tls_client_cert),
                       ("key.pem", made.tls_client_key)):
        paths[name] = folder / name
        fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        paths[name].chmod(0o600)
    return paths


def remote_security(scheduler: str, ca_file: str | None, cert: str | None, key: str | None):
    """The instructor's TLS credentials for an existing cluster; ValueError unless a tls:// address with all three.

    A tcp:// scheduler would run the code of anyone who can reach its port, as its workers' user.
    """
    from distributed.security import Security

    if not scheduler.startswith("tls://"):
        raise ValueError(f"--scheduler {scheduler}: the class's cluster must use TLS (tls://HOST:PORT, with "
                         "--tls-ca-file, --tls-cert and --tls-key); see docs/class-grading.md")
    missing = [option for option, value in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key))
               if not value]
    if missing:
        raise ValueError(f"--scheduler {scheduler} needs the cluster's certificate files: {', '.join(missing)}")
    for path in (ca_file, cert, key):
        if not Path(path).is_file():
            raise ValueError(f"no certificate file {path}")
    if Path(key).stat().st_mode & 0o077:
        log.warning("%s, the cluster's private key, can be read by other users: chmod 600 %s", key, key)
    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def _no_http_server():
    """A worker plugin that closes the worker's HTTP server (metrics, health, its task pages), also on a worker
    that replaces a dead one."""
    from distributed import WorkerPlugin

    class NoHTTPServer(WorkerPlugin):
        name = "cnn-kit-no-http-server"

        def setup(self, worker):
            worker.http_server.stop()

    return NoHTTPServer()


def _stop_scheduler_http(dask_scheduler) -> None:
    dask_scheduler.http_server.stop()


def start_cluster(workers: int | None, scheduler: str | None, gpu: bool, allowed_failures: int, *,
                  security=None, dashboard: bool = False):
    """A Dask client: on `scheduler` if given (with the instructor's `security`), else a LocalCluster of
    single-threaded worker processes, on loopback only, over TLS with a certificate of this run.

    Without `dashboard` no HTTP server of the local cluster listens (Dask starts one in the scheduler and in each
    worker, dashboard or not: they are closed as soon as the cluster is up, and serve no routes before that);
    with it the dashboard listens on loopback (`cluster.dashboard_link`).
    """
    import dask
    from distributed import Client, LocalCluster

    # distributed sets its loggers to INFO when imported: its scheduler's and nannies' start and stop lines
    # (about 30 a run) would bury the progress bar and the summary. Its warnings and errors still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures,
                     "distributed.worker.daemon": False})  # a worker starts grading processes of its own
    if scheduler:
        return Client(scheduler, security=security), None
    security = local_security()
    options = dict(threads_per_worker=1, host=LOOPBACK, protocol="tls://", security=security,
                   resources={"GPU": 1} if gpu else None,
                   dashboard_address=f"{LOOPBACK}:8787" if dashboard else None)
    no_routes = {} if dashboard else {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
    with dask.config.set(no_routes):
        cluster = None
        if gpu:
            try:  # one worker per GPU, each pinned to its own card
                from dask_cuda import LocalCUDACluster

                cluster = LocalCUDACluster(**options)
            except ImportError:
                log.warning("dask-cuda is not installed: %s worker(s) share the visible GPUs "
                            "(pip install dask-cuda for one worker per card)", workers or 1)
        if cluster is None:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, processes=True, **options)
    client = Client(cluster, security=security)
    if dashboard:
        log.warning("the class run's dashboard: %s (any user of this machine can open it)", cluster.dashboard_link)
    else:
        client.run_on_scheduler(_stop_scheduler_http)
        client.register_plugin(_no_http_server())
    return client, cluster


def threads_per_task(workers: int | None, scheduler: str | None) -> int | None:
    """This machine's cores shared by its local workers; None on a cluster (its workers' own)."""
    if scheduler:
        return None
    return max(1, (os.cpu_count() or 1) // (workers or os.cpu_count() or 1))
