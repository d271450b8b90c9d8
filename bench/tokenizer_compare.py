#!/usr/bin/env python3
"""Compares Tessera's tokenizer with Hugging Face `tokenizers` on the same machine, same text,
same tokenizer.json files: encode throughput of one large string (single-threaded in both) and
HF's parallel encode_batch of the lines, plus a token-count cross-check.

  python3 bench/tokenizer_compare.py --bench PATH/tokenizer_bench --text FILE TOKENIZER.json...
Prints one JSON object per tokenizer.
"""
import argparse
import json
import os
import subprocess
import time

from tokenizers import Tokenizer


def best_of(n, fn):
    best = float("inf")
    out = None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("tokenizers", nargs="+")
    args = ap.parse_args()
    text = open(args.text, encoding="utf-8").read()
    lines = text.splitlines(keepends=True)
    mb = len(text.encode()) / 1e6
    for path in args.tokenizers:
        tok = Tokenizer.from_file(path)
        t_single, enc = best_of(3, lambda: tok.encode(text, add_special_tokens=False))
        t_batch, _ = best_of(3, lambda: tok.encode_batch(lines, add_special_tokens=False))
        ours = json.loads(subprocess.run([args.bench, args.text, path, "--repeat", "3"], check=True,
                                         capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(json.dumps({
            "tokenizer": os.path.basename(os.path.dirname(path)) or path, "mb": round(mb, 2),
            "hf_tokens": len(enc.ids), "tessera_tokens": ours.get("tokens"),
            "hf_single_mb_s": round(mb / t_single, 2), "hf_batch_mb_s_all_cores": round(mb / t_batch, 2),
            "tessera_mb_s": round(ours.get("encode_mb_s", 0), 2),
            "tessera_vs_hf_single": round(ours.get("encode_mb_s", 0) / (mb / t_single), 2),
            "cpu": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
