"""Service overhead: the same stories15M job run embedded (`vptqctl quantize`,
in-process coordinator and worker threads) and through a vptq-coordinator plus
one vptq-worker on loopback, alternating, `--repeats` times each. Prints

  {"bench":"service_overhead","ratio":<median cluster / median embedded>,...}

The cluster time runs from `vptqctl submit` through `vptqctl watch` (until the
job ends) to the end of `vptqctl download`;
the embedded time is the whole `vptqctl quantize` process. Both use the same
torch thread count, so the ratio is the cost of gRPC, the separate processes
and the store round trips.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import cluster as cl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads on both sides")
    ap.add_argument("--bits", type=int, default=2)
    args = ap.parse_args()
    cl.ensure_model()
    job = dict(bits=args.bits, num_sequences=32, sequence_length=128, num_shards=2, kmeans_iters=10)
    embedded, cluster_s, identical = [], [], []
    with tempfile.TemporaryDirectory(prefix="vptq-bench-service-") as tmp:
        with cl.Cluster(f"{tmp}/cluster") as c:
            c.start_coordinator()
            c.start_worker("bench-worker", torch_threads=args.threads)
            for r in range(args.repeats):
                t0 = time.monotonic()
                out = cl.embedded_quantize(f"{tmp}/embedded-{r}", **job, torch_threads=args.threads,
                                           extra=("--threads", "1"))
                embedded.append(time.monotonic() - t0)
                t0 = time.monotonic()
                job_id = c.submit(cl.job_spec(name=f"bench-{r}", **job), name=f"bench-{r}")
                # One `vptqctl watch` stream, as a user would follow it; polling
                # with `vptqctl get` would start a process (and libtorch) a
                # few times a second on the same cores as the job.
                watch = c.ctl("watch", job_id, "-o", "json", "--timeout", 1800, timeout=1900)
                assert watch.returncode == 0, f"watch -> {watch.returncode}\n{c.log_tail()}"
                got = c.download(job_id, f"{tmp}/cluster-{r}")
                cluster_s.append(time.monotonic() - t0)
                identical.append(got == out)
                print(f"service_overhead run {r + 1}/{args.repeats}: embedded {embedded[-1]:.1f} s, "
                      f"cluster {cluster_s[-1]:.1f} s, identical {got == out}", file=sys.stderr)
    e, c_ = statistics.median(embedded), statistics.median(cluster_s)
    print(json.dumps({"bench": "service_overhead", "ratio": round(c_ / e, 4),
                      "embedded_seconds": round(e, 2), "cluster_seconds": round(c_, 2),
                      "repeats": args.repeats, "torch_threads": args.threads, "workers": 1,
                      "byte_identical": all(identical)}))


if __name__ == "__main__":
    main()
