#!/usr/bin/env python3
"""Summarizes `engine bench --json` output (JSON Lines, possibly several runs appended):

    python3 bench/summarize.py build/benchres/qwen/engine0.jsonl [more.jsonl ...]

Per file and test: the median over every repetition of every run of tokens/s, its min-max, the
median machine probe (bandwidth or peak) and the median achieved fraction.
"""
import json
import statistics
import sys


def main():
    for path in sys.argv[1:]:
        tests = {}
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    j = json.loads(line)
                    tests.setdefault(j["test"], []).append(j)
        for name, runs in tests.items():
            samples = [s for r in runs for s in r["samples"]]
            probe_key = "peak_flops" if "peak_flops" in runs[0] else "bandwidth_bytes_per_s"
            probe = statistics.median(r[probe_key] for r in runs) / 1e9
            unit = "GFLOP/s" if probe_key == "peak_flops" else "GB/s"
            # q8/q4 prefill on AVX-512 VNNI: the fraction is against vpdpbusd's int8 peak.
            if runs[0].get("peak_instruction") == "vpdpbusd":
                probe = statistics.median(r["peak_int8_ops"] for r in runs) / 1e9
                unit = "int8 GOP/s vpdpbusd"
            print(f"{path}: {name}: median {statistics.median(samples):.2f} t/s "
                  f"(min {min(samples):.2f}, max {max(samples):.2f}, n={len(samples)}), "
                  f"machine {probe:.1f} {unit}, fraction {statistics.median(r['fraction'] for r in runs):.3f}")


if __name__ == "__main__":
    main()
