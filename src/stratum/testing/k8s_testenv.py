"""A real Kubernetes control plane on loopback for the Kubernetes backend's tests and
benchmark: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which
plays the kubelets of simulated Nodes, so Pods bound to them reach Running).

The binaries are built once by `tools/k8s-testenv/build` into a cache folder; this module
only runs them. Certificates (a CA, the API server's serving certificate, the service-account
key) are made here with `cryptography`; every component and the tests authenticate with
static bearer tokens of the `system:masters` group (a test cluster: no secret leaves the
temporary folder). `python -m stratum.testing.k8s_testenv start` runs one in the
foreground and prints its kubeconfig path (tools/k8s-testenv/start).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stratum.testing.pki import make_serving_pki

REPO = Path(__file__).resolve().parents[3]
# DRA device taints (KEP-5055; alpha in 1.35, on by default from 1.36): the way a DRA
# driver tells that a GPU is sick, which the kubernetes backend reads as its health. Off,
# the API server drops a ResourceSlice device's taints on write.
FEATURE_GATES = "--feature-gates=DRADeviceTaints=true"
VERSIONS_FILE = REPO / "tools" / "k8s-testenv" / "versions"
KCM_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "resourcequota-controller",
    "serviceaccount-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
    "resourceclaim-controller",
)
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    if VERSIONS_FILE.exists():
        for line in VERSIONS_FILE.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.isupper():
                found[name] = value.strip()
    return found


def bin_dir() -> Path:
    """Where tools/k8s-testenv/build puts the binaries (same rule as its `versions`)."""
    env = os.environ.get("STRATUM_K8S_TESTENV_DIR")
    if env:
        return Path(env) / "bin"
    v = _versions()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    k8s, kwok = v.get("K8S_VERSION", "unknown"), v.get("KWOK_VERSION", "unknown")
    return cache / "stratum" / "k8s-testenv" / f"{k8s}-kwok-{kwok}" / "bin"


def missing_binaries() -> list[str]:
    """The binaries not built yet (empty when the control plane can start)."""
    folder = bin_dir()
    built = (folder.parent / ".built").exists()
    return [b for b in BINARIES if not built or not (folder / b).exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process (thread) that started it dies, so that a test
    run killed mid-way leaves no control plane behind on a shared machine."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass
class _Proc:
    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class ControlPlane:
    """One control plane in `workdir`. start() returns once the API server is ready and
    the scheduler, controller manager and kwok run; stop() ends every process it started."""

    workdir: Path
    admin_token: str = field(default_factory=lambda: secrets.token_hex(24))
    procs: dict[str, _Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bin = bin_dir()
        self.pki = self.workdir / "pki"
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"

    # -- set-up ------------------------------------------------------------------------
    def _write_pki(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        make_serving_pki(
            self.pki,
            common_name="kube-apiserver",
            ips=("127.0.0.1", "10.0.0.1"),
            dns=("localhost", "kubernetes.default.svc"),
            days=7,
            names=("ca.crt", "ca.key", "apiserver.crt", "apiserver.key"),
        )
        pem = serialization.Encoding.PEM
        plain = serialization.NoEncryption()
        pkcs8 = serialization.PrivateFormat.PKCS8
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.pki / "sa.key").write_bytes(sa.private_bytes(pem, pkcs8, plain))
        (self.pki / "sa.pub").write_bytes(
            sa.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        # One static token per component, all in system:masters (a disposable cluster).
        self.tokens = {
            c: secrets.token_hex(24) for c in ("kube-scheduler", "kube-controller-manager", "kwok")
        }
        rows = [f"{self.admin_token},stratum-admin,admin-uid,system:masters"]
        rows += [f'{t},system:{c},{c}-uid,"system:masters"' for c, t in self.tokens.items()]
        (self.pki / "tokens.csv").write_text("\n".join(rows) + "\n")
        for path in self.pki.iterdir():
            path.chmod(0o600)

    def kubeconfig_text(self, token: str | None = None, user: str = "stratum-admin") -> str:
        """A kubeconfig for this cluster (the admin's token unless another is given)."""
        ca = (self.pki / "ca.crt").read_text()
        import base64

        ca_b64 = base64.b64encode(ca.encode()).decode()
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: testenv\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority-data: {ca_b64}\n"
            f"users:\n- name: {user}\n  user:\n    token: {token or self.admin_token}\n"
            f"contexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: {user}\n"
            "current-context: testenv\n"
        )

    def _write_kubeconfigs(self) -> None:
        self.kubeconfig.write_text(self.kubeconfig_text())
        self.kubeconfig.chmod(0o600)
        for component, token in self.tokens.items():
            path = self.workdir / f"{component}.kubeconfig"
            path.write_text(self.kubeconfig_text(token, f"system:{component}"))
            path.chmod(0o600)

    def _define(self) -> None:
        w, p, b = self.workdir, self.pki, self.bin
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self.procs = {
            "etcd": _Proc(
                "etcd",
                [
                    str(b / "etcd"),
                    f"-data-dir={w / 'etcd'}",
                    f"-listen-client-url={etcd_url}",
                    f"-listen-peer-url=http://127.0.0.1:{self.etcd_peer_port}",
                ],
                w / "etcd.log",
            ),
            "kube-apiserver": _Proc(
                "kube-apiserver",
                [
                    str(b / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={self.api_port}",
                    f"--tls-cert-file={p / 'apiserver.crt'}",
                    f"--tls-private-key-file={p / 'apiserver.key'}",
                    f"--client-ca-file={p / 'ca.crt'}",
                    f"--token-auth-file={p / 'tokens.csv'}",
                    f"--service-account-key-file={p / 'sa.pub'}",
                    f"--service-account-signing-key-file={p / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--authorization-mode=RBAC",
                    "--allow-privileged=true",
                    "--enable-priority-and-fairness=false",
                    "--profiling=false",
                    FEATURE_GATES,
                    "--v=1",
                ],
                w / "kube-apiserver.log",
            ),
            "kube-controller-manager": _Proc(
                "kube-controller-manager",
                [
                    str(b / "kube-controller-manager"),
                    f"--kubeconfig={w / 'kube-controller-manager.kubeconfig'}",
                    f"--authentication-kubeconfig={w / 'kube-controller-manager.kubeconfig'}",
                    f"--authorization-kubeconfig={w / 'kube-controller-manager.kubeconfig'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={p / 'sa.key'}",
                    f"--root-ca-file={p / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    # What the tests lean on: the garbage collector (owner references),
                    # namespaces, quotas, pod GC, node lifecycle and DRA claims.
                    "--controllers=" + ",".join(KCM_CONTROLLERS),
                    "--v=1",
                ],
                w / "kube-controller-manager.log",
            ),
            "kube-scheduler": _Proc(
                "kube-scheduler",
                [
                    str(b / "kube-scheduler"),
                    f"--kubeconfig={w / 'kube-scheduler.kubeconfig'}",
                    f"--authentication-kubeconfig={w / 'kube-scheduler.kubeconfig'}",
                    f"--authorization-kubeconfig={w / 'kube-scheduler.kubeconfig'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    FEATURE_GATES,
                    "--v=1",
                ],
                w / "kube-scheduler.log",
            ),
            "kwok": _Proc(
                "kwok",
                [
                    str(b / "kwok"),
                    f"--kubeconfig={w / 'kwok.kubeconfig'}",
                    f"--config={b.parent / 'kwok-stages.yaml'}",
                    "--manage-nodes-with-label-selector=type=kwok",
                    "--node-ip=127.0.0.1",
                    "--cidr=10.244.0.0/16",
                    f"--server-address=127.0.0.1:{free_port()}",
                ],
                w / "kwok.log",
            ),
        }

    # -- processes ---------------------------------------------------------------------
    def _spawn(self, name: str) -> None:
        proc = self.procs[name]
        log = proc.log.open("ab")
        proc.popen = subprocess.Popen(
            proc.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        log.close()

    def _halt(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.popen is None or proc.popen.poll() is not None:
            return
        proc.popen.send_signal(sig)
        try:
            proc.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(timeout=5)

    def _wait(self, what: str, check: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs.values():
                if proc.popen is not None and proc.popen.poll() is not None:
                    tail = proc.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{tail}")
            if callable(check) and check():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout:.0f}s; logs in {self.workdir}")

    def _etcd_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.etcd_port}/health", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api_ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        req = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self, timeout: float = 180.0) -> ControlPlane:
        missing = missing_binaries()
        if missing:
            raise FileNotFoundError(
                f"not built in {self.bin}: {', '.join(missing)} (run tools/k8s-testenv/build)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_pki()
        self._write_kubeconfigs()
        self._define()
        try:
            self._spawn("etcd")
            self._wait("etcd", self._etcd_ready, timeout)
            self._spawn("kube-apiserver")
            self._wait("kube-apiserver", self.api_ready, timeout)
            for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                self._spawn(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop_apiserver(self) -> None:
        """Stop the API server (SIGTERM); the other components keep running and retry."""
        self._halt("kube-apiserver")

    def start_apiserver(self, timeout: float = 120.0) -> None:
        self._spawn("kube-apiserver")
        self._wait("kube-apiserver", self.api_ready, timeout)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self._halt(name)


def main(argv: list[str]) -> int:
    if argv[:1] != ["start"]:
        sys.stderr.write("usage: python -m stratum.testing.k8s_testenv start [WORKDIR]\n")
        return 2
    workdir = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="k8s-testenv-"))
    cp = ControlPlane(workdir)
    cp.start()
    sys.stdout.write(f"{cp.kubeconfig}\n")
    sys.stdout.flush()
    sys.stderr.write(f"control plane up at {cp.server}; logs in {workdir}; Ctrl-C stops it\n")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        cp.stop()
        if len(argv) <= 1:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
