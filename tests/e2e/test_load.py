"""Load: 20 jobs submitted at once to one coordinator and 4 workers, with one
watcher per job. Every job ends SUCCEEDED, every watcher sees a gap-free
event sequence ending in the terminal event, and the events a watcher saw
equal the job's stored events. Bounded in time; stops by itself.

    python3 tests/e2e/test_load.py -v
"""
import json
import tempfile
import threading
import time
import unittest

import cluster as cl

JOBS = 20
WORKERS = 4
# Tiny jobs: the load is on the coordinator (plans, leases, events, artifacts),
# not on k-means. v=4, K=16: 1 bit per weight.
TINY = dict(num_sequences=2, sequence_length=32, num_shards=1, kmeans_iters=2,
            explicit="vector_len: 4 num_centroids: 16")


class LoadTest(unittest.TestCase):
    def test_twenty_jobs_twenty_watchers(self):
        with tempfile.TemporaryDirectory(prefix="vptq-e2e-load-") as tmp:
            cl.ensure_model()
            with cl.Cluster(tmp) as c:
                c.start_coordinator()
                for i in range(WORKERS):
                    c.start_worker(f"w{i}")
                jobs, errors = [], []

                def submit(i):
                    try:
                        jobs.append(c.submit(cl.job_spec(name=f"load-{i}", priority=i % 3, **TINY),
                                             name=f"load-{i}"))
                    except Exception as e:  # reported below
                        errors.append(e)

                threads = [threading.Thread(target=submit, args=(i,)) for i in range(JOBS)]
                start = time.time()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                self.assertFalse(errors, errors)
                self.assertEqual(len(set(jobs)), JOBS)
                watchers = {j: c.ctl_popen("watch", j, "-o", "json", "--timeout", 840) for j in jobs}
                seen = {}
                for j, w in watchers.items():
                    out, err = w.communicate(timeout=900)
                    self.assertEqual(w.returncode, 0, f"watch {j}: {err}")
                    seen[j] = [json.loads(line) for line in out.splitlines() if line.strip()]
                elapsed = time.time() - start
                for j in jobs:
                    self.assertEqual(c.phase(j), "JOB_PHASE_SUCCEEDED")
                    seqs = [int(e["sequence"]) for e in seen[j]]
                    self.assertEqual(seqs, list(range(1, len(seqs) + 1)), f"gaps or repeats in {j}")
                    self.assertEqual(seen[j][-1]["type"], "EVENT_TYPE_JOB_SUCCEEDED")
                    self.assertEqual(seen[j], c.events(j), f"watcher of {j} saw other events")
                listed = json.loads(c.ctl("list", "-o", "json", check=True).stdout)
                self.assertEqual({x["jobId"] for x in listed.get("jobs", [])}, set(jobs))
                print(f"load: {JOBS} jobs, {WORKERS} workers, {elapsed:.1f} s", flush=True)


if __name__ == "__main__":
    unittest.main()
