"""Service overhead: the same stories15M job run embedded (`vptqctl quantize`,
in-process coordinator and worker threads) and through a vptq-coordinator plus
one vptq-worker on loopback, alternating, `--repeats` times each. Prints

  {"bench":"service_overhead","ratio":<median cluster / median embedded>,...}

The cluster time runs from `vptqctl submit` to the end of `vptqctl download`;
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
    embedded, cluster_s = [], []
    with tempfile.TemporaryDirectory(prefix="vptq-bench-service-") as tmp:
        with cl.Cluster(f"{tmp}/cluster") as c:
            c.start_coordinator()
            c.start_worker("bench-worker", torch_threads=args.threads)
            for r in range(args.repeats):
                t0 = time.monotonic()
                out = cl.embedded_quantize(f"{tmp}/embedded-{r}", **job,
                                           extra=("--threads", "1", "--torch-threads", str(args.threads)))
                embedded.append(time.monotonic() - t0)
                t0 = time.monotonic()
                job_id = c.submit(cl.job_spec(name=f"bench-{r}", **job), name=f"bench-{r}")
                assert c.wait_terminal(job_id, 1800) == "JOB_PHASE_SUCCEEDED", c.log_tail()
                got = c.download(job_id, f"{tmp}/cluster-{r}")
                cluster_s.append(time.monotonic() - t0)
                print(f"service_overhead run {r + 1}/{args.repeats}: embedded {embedded[-1]:.1f} s, "
                      f"cluster {cluster_s[-1]:.1f} s, identical {got == out}", file=sys.stderr)
    e, c_ = statistics.median(embedded), statistics.median(cluster_s)
    print(json.dumps({"bench": "service_overhead", "ratio": round(c_ / e, 4),
                      "embedded_seconds": round(e, 2), "cluster_seconds": round(c_, 2),
                      "repeats": args.repeats, "torch_threads": args.threads, "workers": 1}))


if __name__ == "__main__":
    main()
