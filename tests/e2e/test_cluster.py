"""End to end on real processes: coordinator + workers quantize stories15M and
the downloaded checkpoint is byte-identical to the embedded `vptqctl
quantize`, also when a worker or the coordinator is killed with SIGKILL
mid-job.

    python3 tests/e2e/test_cluster.py -v
"""
import collections
import signal
import tempfile
import unittest

import cluster as cl


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="vptq-e2e-")
        cls.tmp = cls.tmpdir.name
        cl.ensure_model()
        cls.expected = cl.embedded_quantize(f"{cls.tmp}/embedded")
        assert "config.json" in cls.expected and any(k.endswith(".safetensors") for k in cls.expected)

    @classmethod
    def tearDownClass(cls):
        cls.tmpdir.cleanup()

    def assertSameCheckpoint(self, got):
        self.assertEqual(sorted(got), sorted(self.expected))
        for name, data in self.expected.items():
            self.assertTrue(got[name] == data, f"{name} differs from the embedded run's")

    def test_three_workers_match_embedded(self):
        with cl.Cluster(f"{self.tmp}/three") as c:
            c.start_coordinator()
            for w in ("w1", "w2", "w3"):
                c.start_worker(w)
            job = c.submit(cl.job_spec())
            self.assertEqual(c.wait_terminal(job, 600), "JOB_PHASE_SUCCEEDED", c.log_tail())
            workers = {t.get("workerId") for t in c.get(job, tasks=True)["tasks"]}
            self.assertGreater(len(workers), 1, "the tasks should spread over the workers")
            self.assertSameCheckpoint(c.download(job, f"{self.tmp}/three/download"))

    def test_killed_worker_task_is_retried(self):
        with cl.Cluster(f"{self.tmp}/killw") as c:
            c.start_coordinator(lease_seconds=3)
            # The coordinator knows a worker by "<id>/<device>".
            def on_victim(record):
                return record.get("workerId", "").startswith("victim/")

            victim = c.start_worker("victim")  # alone, so it takes task after task
            job = c.submit(cl.job_spec())

            def frozen_holding_a_lease():
                # Tasks take a fraction of a second: freeze the worker first,
                # then look, so the lease cannot end between look and kill.
                victim.send_signal(signal.SIGSTOP)
                tasks = c.get(job, tasks=True)["tasks"]
                if any(t.get("state") == "TASK_STATE_LEASED" and on_victim(t)
                       for t in tasks):
                    return True
                victim.send_signal(signal.SIGCONT)
                return False

            c.wait_until(frozen_holding_a_lease, 300, "a task leased by the victim worker")
            c.kill_worker("victim")
            c.start_worker("survivor")
            self.assertEqual(c.wait_terminal(job, 600), "JOB_PHASE_SUCCEEDED", c.log_tail())
            self.assertGreaterEqual(
                c.metric_value("vptq_task_retries_total", 'reason="lease_expired"'), 1)
            retried = [e for e in c.events(job) if e.get("type") == "EVENT_TYPE_TASK_RETRYING"]
            self.assertTrue(any(on_victim(e) for e in retried), retried)
            self.assertSameCheckpoint(c.download(job, f"{self.tmp}/killw/download"))

    def test_killed_coordinator_resumes_without_rerunning(self):
        with cl.Cluster(f"{self.tmp}/killc") as c:
            c.start_coordinator()
            c.start_worker("w1")
            c.start_worker("w2")
            job = c.submit(cl.job_spec())
            c.wait_until(lambda: c.get(job)["job"].get("progress", {}).get("tasksDone", 0) >= 6,
                         300, "six finished tasks")
            c.kill_coordinator()
            c.start_coordinator()  # same store, same port; the workers reconnect
            self.assertEqual(c.wait_terminal(job, 600), "JOB_PHASE_SUCCEEDED", c.log_tail())
            events = c.events(job)
            seqs = [int(e["sequence"]) for e in events]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "event sequence has gaps")
            self.assertTrue(any(e.get("type") == "EVENT_TYPE_JOB_RESUMED" for e in events))
            succeeded = collections.Counter(
                e["taskId"] for e in events if e.get("type") == "EVENT_TYPE_TASK_SUCCEEDED")
            self.assertTrue(succeeded and max(succeeded.values()) == 1,
                            f"a finished task ran again: {succeeded.most_common(3)}")
            done = set()
            for e in events:  # nothing is leased again once it succeeded
                if e.get("type") == "EVENT_TYPE_TASK_SUCCEEDED":
                    done.add(e["taskId"])
                if e.get("type") == "EVENT_TYPE_TASK_LEASED":
                    self.assertNotIn(e["taskId"], done)
            self.assertSameCheckpoint(c.download(job, f"{self.tmp}/killc/download"))


if __name__ == "__main__":
    unittest.main()
