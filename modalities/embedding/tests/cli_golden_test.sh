#!/usr/bin/env bash
# `engine embed` / `engine rerank` against the golden fixtures (tests/fixtures/embedding):
# cosine >= 0.99999 per embedding, rerank scores within 1e-4, results sorted best first.
# Usage: cli_golden_test.sh ENGINE FIXTURES_DIR CPU_PLUGIN
set -euo pipefail
ENGINE=$1 FIXTURES=$2 PLUGIN=$3
export TESSERA_BACKEND_PATH=$PLUGIN TESSERA_BACKENDS=cpu
exec python3 - "$ENGINE" "$FIXTURES" <<'PY'
import json, math, subprocess, sys

engine, fixtures = sys.argv[1], sys.argv[2]
failed = passed = 0

def run(args):
    p = subprocess.run([engine, "--log-level", "warn"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"engine {' '.join(args[:2])} failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout)

def check(ok, what):
    global failed, passed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)

def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

for name in ["bert_mean", "roberta_max", "xlmr_cls", "qwen3_embed"]:
    e = json.load(open(f"{fixtures}/{name}/expected.json"))
    want = e["st_embeddings"] if e.get("st_same_ids") else e["embeddings"]
    out = run(["embed", f"{fixtures}/{name}", "--truncate", "--"] + e["texts"])
    check(len(out["embeddings"]) == len(want), f"{name}: embedding count")
    for i, (got, exp) in enumerate(zip(out["embeddings"], want)):
        c = cos(got, exp)
        check(c >= 0.99999, f"{name} text {i}: cosine {c}")
    check(out["token_counts"] == [min(len(x), e["max_seq_length"]) for x in e["input_ids"]],
          f"{name}: token counts {out['token_counts']}")
    small = run(["embed", f"{fixtures}/{name}", "--dimensions", "8", "--normalize", "--", e["texts"][1]])
    check(len(small["embeddings"][0]) == 8 and abs(sum(x * x for x in small["embeddings"][0]) - 1) < 1e-5,
          f"{name}: --dimensions 8 --normalize")
    p = subprocess.run([engine, "embed", f"{fixtures}/{name}", e["long_text"]], capture_output=True, text=True)
    check(p.returncode != 0 and "max_seq_length" in p.stderr, f"{name}: long text must fail without --truncate")

for name in ["bert_ce", "xlmr_ce", "qwen3_reranker"]:
    e = json.load(open(f"{fixtures}/{name}/expected.json"))
    out = run(["rerank", f"{fixtures}/{name}", "--query", e["query"], "--"] + e["documents"])
    res = out["results"]
    check(sorted(r["index"] for r in res) == list(range(len(e["documents"]))), f"{name}: indices")
    check(all(res[i]["relevance_score"] >= res[i + 1]["relevance_score"] for i in range(len(res) - 1)),
          f"{name}: sorted")
    for r in res:
        exp = e["scores"][r["index"]]
        check(abs(r["relevance_score"] - exp) <= 1e-4, f"{name} doc {r['index']}: {r['relevance_score']} vs {exp}")
        check(r["document"] == e["documents"][r["index"]], f"{name}: document echoed")

p = subprocess.run([engine, "rerank", f"{fixtures}/bert_mean", "--query", "q", "d"], capture_output=True, text=True)
check(p.returncode != 0 and "not a reranker" in p.stderr, "rerank on an embedding model must fail")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
