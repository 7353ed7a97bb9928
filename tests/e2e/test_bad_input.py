"""Bad input against real processes: each case gives the right code and leaves
the store consistent (the coordinator is restarted on it and the jobs are
checked again).

    python3 tests/e2e/test_bad_input.py -v
"""
import os
import subprocess
import tempfile
import unittest

import cluster as cl

EXIT_CANCELLED, EXIT_USAGE, EXIT_UNREACHABLE = 2, 3, 4


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="vptq-e2e-bad-")
        cls.tmp = cls.tmpdir.name
        cl.ensure_model()
        cls.c = cl.Cluster(cls.tmp)
        cls.c.start_coordinator(lease_seconds=3)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.tmpdir.cleanup()

    def submit_text(self, text, name):
        spec = os.path.join(self.tmp, f"{name}.textproto")
        with open(spec, "w") as f:
            f.write(text)
        return self.c.ctl("submit", spec)

    def test_malformed_spec_is_usage_error(self):
        r = self.submit_text('model { path: "unterminated }\n', "malformed")
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("malformed", r.stderr + r.stdout)

    def test_unknown_field_is_named(self):
        r = self.submit_text(cl.job_spec() + "no_such_field: 1\n", "unknown")
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("no_such_field", r.stderr)

    def test_missing_model_is_not_found(self):
        r = self.submit_text(cl.job_spec(model=f"{self.tmp}/no-such-model"), "missing")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("NOT_FOUND", r.stderr)
        self.assertIn("no-such-model", r.stderr)

    def test_path_escape_is_permission_denied(self):
        for i, path in enumerate(("/etc", f"{self.tmp}/../../etc")):
            r = self.submit_text(cl.job_spec(model=path), f"escape{i}")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("PERMISSION_DENIED", r.stderr)
        link = os.path.join(self.tmp, "link-out")
        os.symlink("/etc", link)
        r = self.submit_text(cl.job_spec(model=link), "symlink")
        self.assertIn("PERMISSION_DENIED", r.stderr)

    def test_wrong_token(self):
        r = self.c.ctl("list", token="not-the-token-0123456789")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = self.c.ctl("list", token=cl.WORKER_TOKEN)
        self.assertIn("PERMISSION_DENIED", r.stderr)

    def test_unreachable_coordinator(self):
        r = cl.Cluster(os.path.join(self.tmp, "nowhere")).ctl("list", "--call-timeout", 2)
        self.assertEqual(r.returncode, EXIT_UNREACHABLE, r.stderr)

    def test_corrupted_upload_is_data_loss_and_retried(self):
        job = self.c.submit(cl.job_spec(name="corrupted"), name="corrupted")
        r = subprocess.run([str(cl.CORRUPT_UPLOAD), "--coordinator", self.c.address,
                            "--token", cl.WORKER_TOKEN, "--worker-id", "liar/cpu"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("DATA_LOSS", r.stdout)
        self.assertIn("SHA-256", r.stdout)
        task_id = r.stdout.split()[1]
        # Nothing of the corrupted upload was kept: once the liar's lease runs
        # out, a real worker redoes the task.
        self.c.start_worker("honest")
        self.assertEqual(self.c.wait_terminal(job, 600), "JOB_PHASE_SUCCEEDED", self.c.log_tail())
        mine = [e for e in self.c.events(job) if e.get("taskId") == task_id]
        self.assertFalse([e for e in mine if e.get("type") == "EVENT_TYPE_TASK_SUCCEEDED"
                          and e.get("workerId") == "liar/cpu"], mine)
        self.assertTrue([e for e in mine if e.get("type") == "EVENT_TYPE_TASK_RETRYING"
                         and e.get("workerId") == "liar/cpu"], mine)
        self.assertGreaterEqual(
            self.c.metric_value("vptq_task_retries_total", 'reason="lease_expired"'), 1)
        # Reopen the store: the job is still whole and downloadable.
        self.assertEqual(self.c.stop_coordinator(), 0)
        self.c.start_coordinator(lease_seconds=3)
        self.assertEqual(self.c.phase(job), "JOB_PHASE_SUCCEEDED")
        files = self.c.download(job, os.path.join(self.tmp, "corrupted-download"))
        self.assertIn("config.json", files)
        self.c.kill_worker("honest")

    def test_cancel_mid_run_survives_restart(self):
        self.c.start_worker("canceller")
        job = self.c.submit(cl.job_spec(name="to-cancel"), name="to-cancel")
        watcher = self.c.ctl_popen("watch", job)
        self.c.wait_until(lambda: self.c.get(job)["job"].get("progress", {}).get("tasksDone", 0) >= 1,
                          300, "the job to start")
        self.assertEqual(self.c.ctl("cancel", job, "--reason", "test").returncode, 0)
        watcher.communicate(timeout=120)
        self.assertEqual(watcher.returncode, EXIT_CANCELLED)
        self.assertEqual(self.c.ctl("cancel", job).returncode, 0, "cancelling twice is fine")
        # Reopen the store: the job stays cancelled, nothing is leased.
        self.assertEqual(self.c.stop_coordinator(), 0)
        self.c.start_coordinator()
        got = self.c.get(job, tasks=True)
        self.assertEqual(got["job"]["phase"], "JOB_PHASE_CANCELLED")
        self.assertFalse([t for t in got["tasks"] if t.get("state") == "TASK_STATE_LEASED"])
        events = self.c.events(job)
        self.assertEqual(events[-1]["type"], "EVENT_TYPE_JOB_CANCELLED")
        seqs = [int(e["sequence"]) for e in events]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.c.kill_worker("canceller")


if __name__ == "__main__":
    unittest.main()
