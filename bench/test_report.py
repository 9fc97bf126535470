"""Tests of bench/report.py on hand-made result lines (standard library only).

    python3 -m unittest bench/test_report.py
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest


def read_text(path):
    with open(path) as f:
        return f.read()


HERE = os.path.dirname(os.path.abspath(__file__))


def hush(name, online, offline, rounds, bytes_, err=1e-5):
    return {"name": name, "framework": "hush", "online_ms_median": online, "online_ms_range": [online, online * 1.1],
            "offline_ms_median": offline, "rounds": rounds, "bytes_per_party": [bytes_, bytes_ - 1],
            "peak_memory_bytes": 100_000_000, "max_abs_error": err}


def crypten(name, online, rounds, bytes_, err=1e-4):
    return {"name": name, "framework": "crypten", "online_ms_median": online, "online_ms_range": [online, online],
            "offline_ms_median": None, "rounds": rounds, "bytes_per_party": [bytes_, bytes_ // 2],
            "peak_memory_bytes": 500_000_000, "max_abs_error": err}


class ReportTest(unittest.TestCase):
    def run_report(self, files, readme=None):
        d = tempfile.mkdtemp()
        res = os.path.join(d, "results")
        os.makedirs(res)
        for name, rows in files.items():
            with open(os.path.join(res, name), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        args = [sys.executable, os.path.join(HERE, "report.py"), res, "--docs", os.path.join(d, "docs")]
        if readme is not None:
            path = os.path.join(d, "README.md")
            with open(path, "w") as f:
                f.write(readme)
            args += ["--readme", path]
        p = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        md = read_text(os.path.join(d, "docs", "BENCHMARKS.md"))
        return d, md

    def test_ratios_targets_and_chart(self):
        d, md = self.run_report({
            "hush-ops.jsonl": [hush("relu 1e6", 100.0, 200.0, 8, 91_000_000), hush("mul 1e6", 20.0, 100.0, 2, 48_000_000)],
            "crypten-ops.jsonl": [crypten("relu 1e6", 2000.0, 36, 584_000_000), crypten("mul 1e6", 100.0, 4, 40_000_000)],
        })
        relu = next(l for l in md.splitlines() if l.startswith("| relu 1e6"))
        # 100 ms vs 2000 ms: 0.050 online, (100 + 200) / 2000 = 0.15 with offline.
        self.assertIn("0.050; 0.15", relu)
        self.assertIn("8 / 36", relu)
        self.assertIn("(0.16)", relu)  # 91 MB / 584 MB
        self.assertIn("✓10× time ✓rounds ✓½ bytes", relu)
        mul = next(l for l in md.splitlines() if l.startswith("| mul 1e6"))
        self.assertIn("✗10× time", mul)  # 20 ms vs 100 ms is only 5×
        self.assertIn("✗½ bytes", mul)
        self.assertIn("1 of 2 compared rows meet all three targets", md)
        svg = read_text(os.path.join(d, "docs", "benchmarks.svg"))
        self.assertTrue(svg.startswith("<svg") and "relu 1e6" in svg)

    def test_a_partial_crypten_run_is_flagged(self):
        hush_ops = [hush("relu 1e6", 100.0, 200.0, 8, 91_000_000), hush("mul 1e6 (masked inputs)", 8.0, 50.0, 2, 8_125_000),
                    hush("truncation 1e6 (dealer)", 4.0, 30.0, 1, 16_000_000)]
        _, md = self.run_report({
            "hush-ops.jsonl": hush_ops,
            "crypten-ops.jsonl": [crypten("relu 1e6", 2000.0, 36, 584_000_000)],
        })
        # mul 1e6 is one of CrypTen's workloads (bench/crypten/bench.py);
        # truncation is not, and is not flagged.
        self.assertIn("**Incomplete comparison**: CrypTen's results have no line for mul 1e6 ", md)
        _, md = self.run_report({
            "hush-ops.jsonl": hush_ops,
            "crypten-ops.jsonl": [crypten("relu 1e6", 2000.0, 36, 584_000_000), crypten("mul 1e6", 100.0, 4, 40_000_000)],
        })
        self.assertNotIn("Incomplete comparison", md)

    def test_repetition_counts_are_stated_from_the_results(self):
        ops = [dict(hush("relu 1e6", 100.0, 200.0, 8, 91_000_000), reps=15)]
        models = [dict(hush("LeNet-5 1x1x28x28", 3.0, 3.0, 74, 700_000), reps=5),
                  dict(hush("ResNet-18 1x3x224x224", 500.0, 1200.0, 210, 339_000_000), reps=3)]
        _, md = self.run_report({
            "hush-ops.jsonl": ops,
            "hush-models.jsonl": models,
            "crypten-ops.jsonl": [dict(crypten("relu 1e6", 2000.0, 36, 584_000_000), reps=5)],
        })
        self.assertIn("15 for Hush's single operations", md)
        self.assertIn("5 for CrypTen's;", md)
        self.assertIn("5 or 3 for Hush's models", md)

    def test_masked_input_rows_are_compared_with_crypten_s_same_workload(self):
        _, md = self.run_report({
            # The first masked line came from the run filtered by "mul 1e6"; the
            # second, from its own process, replaces it.
            "hush-ops.jsonl": [hush("mul 1e6 (masked inputs)", 99.0, 50.0, 2, 8_125_000),
                               dict(hush("mul 1e6 (masked inputs)", 8.0, 50.0, 2, 8_125_000),
                                    setup={"ms": 30.0, "bytes_sent_per_party": [8_000_000, 8_000_000], "rounds": 1})],
            "crypten-ops.jsonl": [crypten("mul 1e6", 100.0, 4, 40_000_000)],
        })
        mul = next(l for l in md.splitlines() if l.startswith("| mul 1e6 (masked inputs)"))
        self.assertIn("0.080", mul)
        self.assertEqual(md.count("| mul 1e6 (masked inputs)"), 1)
        self.assertIn("(0.20)", mul)  # 8.1 MB / 40 MB
        self.assertIn("✓10× time ✓rounds ✓½ bytes", mul)
        # The masking setup is listed under the table, not hidden, and the
        # product is given again with its entry counted: 8 + 30 ms, 2 + 1
        # rounds, 8.125 + 16 MB per party against CrypTen's 40.
        self.assertIn("- mul 1e6 (masked inputs): 30 ms, 16.0 MB sent in all (party 0: 8.0 MB, party 1: 8.0 MB); "
                      "with the entry: 38 ms (0.38 of CrypTen's), 3 / 4 rounds, 24.1 MB per party (0.60): "
                      "✗10× time ✓rounds ✗½ bytes", md)
        self.assertIn("**Counting the entry** of the masked rows' inputs as part of the query (as below the table; "
                      "CrypTen's sharing of a fresh input sends nothing), 0 of 1 (not: mul 1e6)", md)

    def test_a_local_truncation_row_with_its_entry_can_meet_a_workload_the_exact_one_misses(self):
        entry = {"ms": 4.0, "bytes_sent_per_party": [8_000_000, 8_000_000], "rounds": 2}
        _, md = self.run_report({
            "hush-ops.jsonl": [dict(hush("mul 1e6 (masked inputs)", 5.0, 50.0, 2, 8_125_000), setup=entry),
                               dict(hush("mul 1e6 (masked inputs, local truncation)", 4.0, 30.0, 0, 0), setup=entry)],
            "crypten-ops.jsonl": [crypten("mul 1e6", 100.0, 4, 40_000_000)],
        })
        # With the entry: 8 ms, 2 rounds, 16 MB per party (0.40): all three.
        self.assertIn("- mul 1e6 (masked inputs, local truncation): 4.00 ms, 16.0 MB sent in all (party 0: 8.0 MB, "
                      "party 1: 8.0 MB); with the entry: 8.00 ms (0.080 of CrypTen's), 2 / 4 rounds, 16.0 MB per "
                      "party (0.40): ✓10× time ✓rounds ✓½ bytes", md)
        self.assertIn("with the entry: 9.00 ms (0.090 of CrypTen's), 4 / 4 rounds, 24.1 MB per party (0.60): "
                      "✓10× time ✓rounds ✗½ bytes", md)
        self.assertIn("**Counting the entry** of the masked rows' inputs as part of the query (as below the table; "
                      "CrypTen's sharing of a fresh input sends nothing), 1 of 1:", md)

    def test_weight_setups_are_not_counted_as_entries(self):
        _, md = self.run_report({
            "hush-ops.jsonl": [dict(hush("matmul 1x1024 . 1024x1024 (weights)", 0.5, 10.0, 1, 17_000),
                                    setup={"ms": 12.0, "bytes_sent_per_party": [0, 8_400_000], "rounds": 1})],
            "crypten-ops.jsonl": [crypten("matmul 1x1024 . 1024x1024 (weights)", 50.0, 4, 16_800_000)],
        })
        self.assertIn("- matmul 1x1024 . 1024x1024 (weights): 12 ms, 8.4 MB sent in all (party 0: 0 B, party 1: 8.4 MB)\n",
                      md)
        self.assertIn("**Counting the entry** of the masked rows' inputs as part of the query (as below the table; "
                      "CrypTen's sharing of a fresh input sends nothing), 1 of 1:", md)

    def test_workloads_count_once_with_their_best_row(self):
        _, md = self.run_report({
            "hush-ops.jsonl": [hush("mul 1e6", 20.0, 100.0, 2, 48_000_000),
                               hush("mul 1e6 (masked inputs)", 8.0, 50.0, 2, 8_125_000),
                               hush("sqrt 1e5", 40.0, 100.0, 19, 25_000_000)],
            "crypten-ops.jsonl": [crypten("mul 1e6", 100.0, 4, 40_000_000), crypten("sqrt 1e5", 300.0, 72, 54_000_000)],
        })
        # Rows: only the masked mul meets all three; workloads: mul does, sqrt (40 vs 300 ms) does not.
        self.assertIn("1 of 3 compared rows meet all three targets", md)
        self.assertIn("**By workload**: 1 of 2 of CrypTen's single-operation workloads have a Hush row that meets "
                      "all three targets (not: sqrt 1e5)", md)

    def test_crypten_failures_and_missing_rows_are_said(self):
        _, md = self.run_report({
            "hush-models.jsonl": [hush("transformer encoder 1x8x16", 4.0, 4.0, 262, 1_000_000),
                                  hush("ResNet-style (small) 1x3x32x32", 20.0, 20.0, 56, 8_000_000)],
            "crypten-models.jsonl": [{"name": "transformer encoder 1x8x16", "framework": "crypten",
                                      "error": "failed: x | ValueError: CrypTen does not support ONNX op LayerNormalization. | ERROR:root:One of the parties failed"}],
        })
        self.assertIn("CrypTen does not support ONNX op LayerNormalization", md)
        self.assertIn("not in CrypTen's run", md)

    def test_readme_headline_is_replaced_between_markers(self):
        d, _ = self.run_report(
            {"hush-models.jsonl": [hush("LeNet-5 1x1x28x28", 5.0, 4.0, 74, 758_000)],
             "crypten-models.jsonl": [crypten("LeNet-5 1x1x28x28", 900.0, 532, 16_900_000)],
             "net-e2e.jsonl": [{"name": "ResNet-18 1x3x32x32 end to end (hush serve/infer)", "link": "wan40", "rtt_ms": 40.0,
                                "rate_mbit": 100.0, "shaping": "tc netem", "connect_and_setup_s": 8.0,
                                "inference_s_median": 4.5, "end_to_end_s": 12.5,
                                "online": {"rounds": 212, "bytes_sent": 3_860_000}}]},
            readme="intro\n<!-- bench:headline -->\nold\n<!-- /bench:headline -->\nrest\n",
        )
        text = read_text(os.path.join(d, "README.md"))
        self.assertNotIn("old", text)
        self.assertIn("| LeNet-5 1x1x28x28 | 5.00 ms | 900 ms | 0.006 | 74 / 532 |", text)
        self.assertIn("end to end over 40 ms RTT / 100 Mbit/s | 12.5 s", text)
        self.assertTrue(text.startswith("intro\n") and text.endswith("rest\n"))

    def test_no_results_is_an_error(self):
        d = tempfile.mkdtemp()
        p = subprocess.run([sys.executable, os.path.join(HERE, "report.py"), d, "--docs", d], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no Hush results", p.stderr)


if __name__ == "__main__":
    unittest.main()
