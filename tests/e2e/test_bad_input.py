"""Bad input against real processes: each case gives the right code and leaves
the store consistent (the coordinator is restarted on it and the jobs are
checked again).

    python3 tests/e2e/test_bad_input.py -v
"""
import os
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
        cls.c.start_coordinator()

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

    def test_cancel_mid_run_survives_restart(self):
        self.c.start_worker("canceller")
        job = self.c.submit(cl.job_spec(name="to-cancel"), name="to-cancel")
        watcher = self.c.ctl_popen("watch", job)
        self.c.wait_until(lambda: self.c.get(job)["job"].get("progress", {}).get("tasksDone", 0) >= 1,
                          300, "the job to start")
        self.assertEqual(self.c.ctl("cancel", job, "--reason", "test").returncode, 0)
        self.assertEqual(watcher.wait(timeout=120), EXIT_CANCELLED)
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


if __name__ == "__main__":
    unittest.main()
