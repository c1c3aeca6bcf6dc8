"""Flower side of bench/net/flower_vs_privet.sh (runs inside target/bench-venv-flwr-deploy).

  flower_deploy.py run --nodes N --rounds R --workdir DIR [--insecure] [--timeout S]
      Starts one `flower-superlink` and N `flower-supernode` processes on 127.0.0.1,
      submits bench/net/flower_app with `flwr run --stream`, and writes DIR/result.json:
      the ServerApp's per-round wall times (round 1 dropped), the peak memory (PSS) of
      every process the run started, and the outcome. Everything it started is stopped
      at the end, by process id.

  flower_deploy.py summarize --out FILE --privet P1.json ... --flower F1.json ...
      Median of per-run round medians for each side and N, the ratio flower / privet;
      prints a table and writes FILE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = HERE / "flower_app"


# --- processes -------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(roots: list[int]) -> list[int]:
    """The roots and every process below them, zombies left out."""
    kids = _children_map()
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if _alive(pid):
            out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem_available_mib() -> int:
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def stop_all(procs: list[subprocess.Popen], kill_now: bool = False) -> None:
    """SIGTERM every process of the run, then SIGKILL what is left after 15 s
    (at once when `kill_now`: memory is running out)."""
    pids = descendants([p.pid for p in procs])
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL if kill_now else signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + (1 if kill_now else 15)
    while time.time() < deadline:
        if not descendants(pids):
            break
        time.sleep(0.3)
    for pid in descendants(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Sampler(threading.Thread):
    """Peak PSS of the run's processes; aborts the run when memory runs low."""

    def __init__(self, roots: list[int], min_avail_mib: int, on_low_memory) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.min_avail_mib = min_avail_mib
        self.on_low_memory = on_low_memory
        self.peak_pss_mib = 0.0
        self.peak_procs = 0
        self.min_avail_seen = mem_available_mib()
        self.low_memory = False
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            pids = descendants(self.roots)
            pss = sum(pss_kib(p) for p in pids) / 1024
            self.peak_pss_mib = max(self.peak_pss_mib, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            avail = mem_available_mib()
            self.min_avail_seen = min(self.min_avail_seen, avail)
            if avail < self.min_avail_mib and not self.low_memory:
                self.low_memory = True
                self.on_low_memory()
            self._stop.wait(2.0)

    def stop(self) -> None:
        self._stop.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


# --- TLS ---------------------------------------------------------------------------


def make_certs(d: Path) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1 (P-256 ECDSA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(cert.public_bytes(pem))
    (d / "server.key").write_bytes(
        key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# --- one run -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    wd = Path(args.workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    env["FLWR_HOME"] = str(wd / "flwr-home")
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    (wd / "flwr-home").mkdir(exist_ok=True)

    port = free_port()
    tls = not args.insecure
    certs = wd / "certs"
    if tls:
        make_certs(certs)
        link_tls = [
            "--ssl-certfile", str(certs / "server.pem"),
            "--ssl-keyfile", str(certs / "server.key"),
            "--ssl-ca-certfile", str(certs / "ca.pem"),
        ]  # fmt: skip
        node_tls = ["--root-certificates", str(certs / "ca.pem")]
        cli_tls = f'root-certificates = "{certs / "ca.pem"}"'
    else:
        link_tls, node_tls, cli_tls = ["--insecure"], ["--insecure"], "insecure = true"
    (wd / "flwr-home" / "config.toml").write_text(
        '[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
        f'address = "127.0.0.1:{port}"\n{cli_tls}\n',
        encoding="utf-8",
    )

    roots: list[int] = []
    procs: list[subprocess.Popen] = []
    logs = []
    result: dict = {
        "nodes": args.nodes,
        "rounds": args.rounds,
        "tls": tls,
        "status": "failed",
    }
    t_start = time.time()

    def spawn(cmd: list[str], log_name: str) -> subprocess.Popen:
        log = open(wd / log_name, "wb")  # noqa: SIM115 (closed at the end)
        logs.append(log)
        p = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=wd,
            start_new_session=True,
        )  # fmt: skip
        roots.append(p.pid)
        procs.append(p)
        return p

    low_memory = threading.Event()
    cli: subprocess.Popen | None = None

    def on_low_memory() -> None:
        low_memory.set()
        if cli is not None:
            cli.terminate()

    sampler = Sampler(roots, args.min_available_mib, on_low_memory)
    try:
        spawn(
            [str(bindir / "flower-superlink"), *link_tls,
             "--host", "127.0.0.1", "--port", str(port),
             "--disable-runtime-dependency-installation"],
            "superlink.log",
        )  # fmt: skip
        if not wait_port(port, 60):
            result["error"] = "SuperLink did not open its port within 60 s"
            return 1
        sampler.start()
        for i in range(args.nodes):
            # Paced, so that memory is checked while the SuperNodes come up.
            if low_memory.is_set() or mem_available_mib() < args.min_available_mib:
                on_low_memory()
                result["supernodes_started"] = i
                result["error"] = (
                    f"aborted: MemAvailable fell below {args.min_available_mib} MiB "
                    f"after {i} SuperNodes had been started"
                )
                return 1
            if i:
                time.sleep(args.spawn_interval)
            spawn(
                [str(bindir / "flower-supernode"), *node_tls,
                 "--superlink", f"127.0.0.1:{port}",
                 "--host", "127.0.0.1", "--port", str(free_port()),
                 "--node-config", f"partition-id={i}"],
                f"supernode-{i}.log",
            )  # fmt: skip
        result["supernodes_started"] = args.nodes
        timing = wd / "timing.json"
        timing.unlink(missing_ok=True)
        t_submit = time.time()
        cli = spawn(
            [str(bindir / "flwr"), "run", str(APP), "bench", "--stream",
             "--run-config",
             f"num-server-rounds={args.rounds} num-nodes={args.nodes} "
             f'timing-file="{timing}"'],
            "flwr-run.log",
        )  # fmt: skip
        try:
            rc = cli.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            result["error"] = f"flwr run did not finish within {args.timeout} s"
            return 1
        result["flwr_run_seconds"] = time.time() - t_submit
        if low_memory.is_set():
            result["error"] = (
                f"aborted: MemAvailable fell below {args.min_available_mib} MiB"
            )
            return 1
        if not timing.exists():
            result["error"] = f"flwr run exited {rc} without a timing file (see logs)"
            return 1
        t = json.loads(timing.read_text(encoding="utf-8"))
        secs = t["round_seconds_all"][1:]
        result.update(
            status="ok",
            params=t["params"],
            round_nodes=t["round_nodes"],
            round1_seconds=t["round_seconds_all"][0],
            round_seconds=secs,
            round_seconds_median=statistics.median(secs),
            max_param_drift=t["max_param_drift"],
        )
        return 0
    finally:
        sampler.stop()
        stop_all(procs, kill_now=low_memory.is_set())
        for log in logs:
            log.close()
        result["peak_pss_mib"] = round(sampler.peak_pss_mib, 1)
        result["peak_processes"] = sampler.peak_procs
        result["min_mem_available_mib"] = sampler.min_avail_seen
        result["wall_seconds"] = round(time.time() - t_start, 1)
        if low_memory.is_set() and result["status"] != "ok" and "error" not in result:
            result["error"] = (
                f"aborted: MemAvailable fell below {args.min_available_mib} MiB"
            )
        (wd / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(json.dumps({k: v for k, v in result.items() if k != "round_nodes"}))


# --- summary -----------------------------------------------------------------------


def summarize(args: argparse.Namespace) -> int:
    privet: dict[int, list[dict]] = {}
    flower: dict[int, list[dict]] = {}
    for f in args.privet:
        for r in json.loads(Path(f).read_text(encoding="utf-8")):
            privet.setdefault(int(r["nodes"]), []).append(r)
    for f in args.flower:
        r = json.loads(Path(f).read_text(encoding="utf-8"))
        flower.setdefault(int(r["nodes"]), []).append(r)

    rows = []
    for n in sorted(set(privet) | set(flower)):
        p_runs = privet.get(n, [])
        f_runs = flower.get(n, [])
        f_ok = [r for r in f_runs if r.get("status") == "ok"]
        p_med = (
            statistics.median(r["round_seconds_median"] for r in p_runs)
            if p_runs
            else None
        )
        f_med = (
            statistics.median(r["round_seconds_median"] for r in f_ok) if f_ok else None
        )
        rows.append(
            {
                "nodes": n,
                "privet_round_seconds": p_med,
                "flower_round_seconds": f_med,
                "ratio_flower_over_privet": (f_med / p_med) if p_med and f_med else None,
                "privet_run_medians": [r["round_seconds_median"] for r in p_runs],
                "flower_run_medians": [r["round_seconds_median"] for r in f_ok],
                "flower_failed_runs": [
                    r.get("error", "unknown") for r in f_runs if r.get("status") != "ok"
                ],
                "flower_peak_pss_mib": [r.get("peak_pss_mib") for r in f_runs],
                "flower_tls": sorted({r.get("tls") for r in f_runs}),
                "privet_runs": p_runs,
                "flower_runs": f_runs,
            }
        )

    meta = json.loads(args.meta) if args.meta else {}
    out = {**meta, "results": rows}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

    def fmt(x: float | None) -> str:
        if x is None:
            return "n/a"
        return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"

    print()
    print("| nodes | privet round | Flower round | ratio (Flower / privet) | runs |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = r["ratio_flower_over_privet"]
        print(
            f"| {r['nodes']} | {fmt(r['privet_round_seconds'])} "
            f"| {fmt(r['flower_round_seconds'])} "
            f"| {'n/a' if ratio is None else f'{ratio:.1f}x'} "
            f"| {len(r['privet_run_medians'])} / {len(r['flower_run_medians'])}"
            + (
                f" (Flower failed: {'; '.join(r['flower_failed_runs'])})"
                if r["flower_failed_runs"]
                else ""
            )
            + " |"
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--nodes", type=int, required=True)
    r.add_argument("--rounds", type=int, default=6)
    r.add_argument("--workdir", required=True)
    r.add_argument("--insecure", action="store_true")
    r.add_argument("--timeout", type=float, default=3600)
    r.add_argument("--min-available-mib", type=int, default=4096)
    r.add_argument("--spawn-interval", type=float, default=0.25)
    s = sub.add_parser("summarize")
    s.add_argument("--out", required=True)
    s.add_argument("--privet", nargs="*", default=[])
    s.add_argument("--flower", nargs="*", default=[])
    s.add_argument("--meta", default="")
    a = ap.parse_args()
    if a.cmd == "run":
        if a.nodes < 1 or a.rounds < 2:
            ap.error("--nodes must be >= 1 and --rounds >= 2 (round 1 is not timed)")
        return run(a)
    return summarize(a)


if __name__ == "__main__":
    sys.exit(main())
