"""A class run's Dask cluster is the instructor's: another user of the machine cannot run code through it.

The cluster is started as `cnn-kit autograde ASSIGNMENT --workers 2` starts it (classgrade.start_cluster). While
it runs, a real unprivileged Unix user, made for the test, tries what a student with a shell or a Jupyter
session on the course server would: a plain Dask client on the scheduler's port over tcp://, over tls:// without
the run's certificate, and over tls:// with a certificate of its own, each submitting code that would create
a marker file (as the grader's user). Every listening socket of the run must be bound to loopback, and none
may answer HTTP (no dashboard, no metrics or task pages).
"""
import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from autograder.course import classgrade

def _touch(marker: str) -> int:
    Path(marker).write_text("ran")
    return os.getuid()


def _intruder(user: str, commands, results) -> None:
    """A process forked before the cluster starts, then running as `user` (the Python under /root is not
    executable by another user, so it is this process that drops root): it waits for the scheduler's address,
    then tries each way in. Everything it needs is imported before it drops root."""
    import pwd
    import ssl  # (imported before dropping root: the interpreter's files are root's alone)

    import distributed.comm.tcp  # noqa: F401
    from distributed import Client
    from distributed.security import Security

    class AnyServer(Security):
        """TLS that trusts any server and shows the certificate in `chain` (cert, key files), or none."""

        def __init__(self, chain=()):
            super().__init__()
            self.chain = chain

        def get_connection_args(self, role):
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            if self.chain:
                context.load_cert_chain(*self.chain)
            return {**super().get_connection_args(role), "ssl_context": context, "require_encryption": False}

    own = Security.temporary()
    folder = Path(tempfile.mkdtemp(prefix="cnn-kit-intruder-"))
    (folder / "cert.pem").write_text(own.tls_client_cert)
    (folder / "key.pem").write_text(own.tls_client_key)
    os.chown(folder, pwd.getpwnam(user).pw_uid, -1)
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    port, marker = commands.recv()
    attempts = {}
    for name, address, security in [
            ("tcp", f"tcp://127.0.0.1:{port}", None),
            ("tls without certificate", f"tls://127.0.0.1:{port}", AnyServer()),
            ("tls with a certificate of its own", f"tls://127.0.0.1:{port}",
             AnyServer((folder / "cert.pem", folder / "key.pem")))]:
        try:
            with Client(address, security=security, timeout=5) as client:
                uid = client.submit(_touch, marker, pure=False).result(timeout=10)
                attempts[name] = f"connected; its code ran as uid {uid}"
        except BaseException as exc:  # noqa: BLE001 (whatever stops the intruder is reported)
            attempts[name] = f"refused: {type(exc).__name__}: {exc}"[:300]
    shutil.rmtree(folder, ignore_errors=True)
    results.send({"uid": os.getuid(), "attempts": attempts})


@pytest.fixture
def other_user():
    """A fresh unprivileged Unix user, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating another Unix user and running code as it needs root")
    if not (shutil.which("useradd") and shutil.which("userdel") and shutil.which("runuser")):
        pytest.skip("useradd, userdel or runuser is not installed")
    name = f"cnnkit-{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    import psutil

    return [(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def _answers_http(port: int) -> bytes:
    """What a plain HTTP request to 127.0.0.1:port gets back (b'' when the connection is refused or closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"GET /info/main/workers.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return s.recv(64)
    except OSError:
        return b""


def test_another_user_cannot_run_code_through_a_class_run(other_user, tmp_path):
    import psutil

    marker = Path("/tmp") / f"cnn-kit-intruder-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("fork")
    commands, their_commands = context.Pipe()
    their_results, results = context.Pipe()
    intruder = context.Process(target=_intruder, args=(other_user, their_commands, their_results), daemon=True)
    intruder.start()
    client, cluster = classgrade.start_cluster(workers=2, scheduler=None, gpu=False, allowed_failures=0)
    try:
        host, port = cluster.scheduler_address.split("://")[1].rsplit(":", 1)
        run_pids = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
        sockets = _listening(run_pids)
        commands.send((port, str(marker)))
        assert results.poll(120), "the other user's process did not answer"
        report = results.recv()
        http = {p: _answers_http(p) for _, p in sockets}
    finally:
        client.close()
        cluster.close()
        intruder.join(10)
        if intruder.is_alive():
            intruder.kill()
    try:
        assert report["uid"] != 0
        broken = {n: w for n, w in report["attempts"].items() if "Import" in w or "Permission" in w}
        assert not broken, f"the other user's client failed before reaching the cluster: {broken}"
        connected = {name: what for name, what in report["attempts"].items() if not what.startswith("refused")}
        assert not connected, f"another user reached the class run's scheduler: {connected}"
        assert not marker.exists(), "another user's code ran in the class run's cluster"
        exposed = [(ip, p) for ip, p in sockets if not ip.startswith("127.")]
        assert not exposed, f"the class run listens beyond loopback: {exposed}"
        answering = {p: head for p, head in http.items() if head.startswith(b"HTTP/")}
        assert not answering, f"a class run's port answers HTTP (dashboard or routes): {answering}"
    finally:
        marker.unlink(missing_ok=True)


def test_an_existing_cluster_is_reached_over_tls_with_the_instructors_certificate(tmp_path):
    """--scheduler: tcp:// is refused with the way out; tls:// with the files write_certificates makes connects
    to a cluster started with them (as the README's Slurm and Kubernetes recipes start theirs)."""
    from distributed import Client, LocalCluster
    from distributed.security import Security

    with pytest.raises(ValueError, match="must use TLS"):
        classgrade.remote_security("tcp://10.0.0.5:8786", None, None, None)
    with pytest.raises(ValueError, match="--tls-key"):
        classgrade.remote_security("tls://10.0.0.5:8786", "ca.pem", "cert.pem", None)
    paths = classgrade.write_certificates(tmp_path / "tls")
    assert {oct(p.stat().st_mode & 0o777) for p in paths.values()} == {"0o600"}
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    instructors = Security(require_encryption=True, tls_ca_file=str(paths["ca.pem"]),
                           **{f"tls_{role}_{kind}": str(paths[f"{kind}.pem"])
                              for role in ("scheduler", "worker", "client") for kind in ("cert", "key")})
    security = classgrade.remote_security("tls://127.0.0.1:1", *(str(paths[n]) for n in
                                                                 ("ca.pem", "cert.pem", "key.pem")))
    assert security.require_encryption
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tls://",
                      security=instructors, dashboard_address=None) as cluster, \
            Client(cluster.scheduler_address, security=security, timeout=10) as client:
        assert client.submit(sum, [1, 2]).result(timeout=10) == 3


def test_the_dashboard_is_on_loopback_when_asked_for():
    client, cluster = classgrade.start_cluster(workers=1, scheduler=None, gpu=False, allowed_failures=0,
                                               dashboard=True)
    try:
        assert cluster.dashboard_link.startswith("http://127.0.0.1:"), cluster.dashboard_link
    finally:
        client.close()
        cluster.close()
