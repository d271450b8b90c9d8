#!/usr/bin/env bash
# End-to-end tests of the `engine` command line. Usage: cli_test.sh ENGINE REPO_ROOT
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
ENGINE=$1
ROOT=$2
MODEL=$ROOT/models/default
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect_rc() {  # expect_rc RC DESCRIPTION CMD...
  local want=$1 desc=$2; shift 2
  "$@" > /tmp/cli_out.$$ 2> /tmp/cli_err.$$
  local rc=$?
  if [ "$rc" = "$want" ] || { [ "$want" = nz ] && [ "$rc" != 0 ]; }; then ok; else bad "$desc: rc $rc, want $want; stderr: $(head -c 400 /tmp/cli_err.$$)"; fi
}
out() { cat /tmp/cli_out.$$; }
err() { cat /tmp/cli_err.$$; }

# The engine and the core library link no vendor runtime (CUDA, Vulkan, OpenCL, Level Zero).
CORE_LIB=$(dirname "$ENGINE")/../lib/libtessera_core.so
for bin in "$ENGINE" "$CORE_LIB"; do
  if ldd "$bin" | grep -qE "libcuda|libcudart|libvulkan|libOpenCL|libze_loader|libnvidia"; then
    bad "$bin links a vendor runtime: $(ldd "$bin" | grep -E 'cuda|vulkan|OpenCL|ze_loader|nvidia')"
  else ok; fi
done
expect_rc 0 "--version" "$ENGINE" --version
out | grep -q "^engine " && ok || bad "--version prints 'engine X'"
for sub in devices config run tokenize detokenize; do
  expect_rc 0 "$sub --help" "$ENGINE" $sub --help
done
expect_rc 0 "devices" "$ENGINE" devices -v
out | grep -q "^cpu " && ok || bad "devices lists the cpu backend"
out | grep -q "Candidates:" && ok || bad "devices -v lists candidates"
# Global flags before or after the subcommand, in both spellings.
expect_rc 0 "--backend=cpu before" "$ENGINE" --backend=cpu devices
expect_rc 0 "--backend cpu after" "$ENGINE" devices --backend cpu
expect_rc 0 "config --list --json" "$ENGINE" config --list --json --threads 3
out | python3 -c 'import json,sys; d={s["name"]: s for s in json.load(sys.stdin)}; assert d["threads"]["value"] == 3 and d["threads"]["source"] == "command-line"' && ok || bad "config --json shows threads=3 from the command line"
TESSERA_THREADS=5 "$ENGINE" config --list --json 2>/dev/null | python3 -c 'import json,sys; d={s["name"]: s for s in json.load(sys.stdin)}; assert d["threads"]["value"] == 5 and d["threads"]["source"] == "environment"' && ok || bad "TESSERA_THREADS is read"
expect_rc 2 "bad setting value" "$ENGINE" config --list --set threads=-4
err | grep -q "outside" && ok || bad "bad setting names the range"
# JSON logs are one object a line on stderr.
expect_rc 0 "json logs" "$ENGINE" run "$MODEL" "In the beginning" --max-tokens 3 --temperature 0 --log-format json
err | head -1 | python3 -c 'import json,sys; j=json.loads(sys.stdin.readline()); assert j["level"] and j["msg"]' && ok || bad "--log-format json writes JSON lines"
# A missing backend is a clear error naming where it looked, not a crash.
expect_rc 1 "missing backend" "$ENGINE" --backend=nosuch devices
expect_rc 1 "no plugins" env TESSERA_BACKENDS=nosuch "$ENGINE" run "$MODEL" hi
err | grep -q "Searched:" && ok || bad "missing plugin error lists the searched places"
# Tokenization round trip on the default model.
expect_rc 0 "tokenize" "$ENGINE" tokenize "$MODEL" "In the beginning"
ids=$(out)
echo "$ids" | grep -q '^\[0,' && ok || bad "tokenize adds <s>: $ids"
expect_rc 0 "tokenize --no-add-special" "$ENGINE" tokenize "$MODEL" "In the beginning" --no-add-special
out | grep -q '^\[0,' && bad "no <s> with --no-add-special" || ok
expect_rc 0 "detokenize" "$ENGINE" detokenize "$MODEL" "$ids" --skip-special
[ "$(out)" = "In the beginning" ] && ok || bad "detokenize round trip: '$(out)'"
expect_rc 2 "detokenize bad json" "$ENGINE" detokenize "$MODEL" "[1, oops]"
expect_rc 1 "detokenize out of range" "$ENGINE" detokenize "$MODEL" "[99999999]"
# Generation: greedy is deterministic, sampling with a seed is reproducible.
expect_rc 0 "run greedy" "$ENGINE" run "$MODEL" "And God said" --max-tokens 12 --temperature 0
a=$(out)
"$ENGINE" run "$MODEL" "And God said" --max-tokens 12 --temperature 0 > /tmp/cli_b.$$ 2>/dev/null
[ -n "$a" ] && [ "$a" = "$(cat /tmp/cli_b.$$)" ] && ok || bad "greedy runs differ"
"$ENGINE" run "$MODEL" "And God said" --max-tokens 12 --seed 7 > /tmp/cli_c.$$ 2>/dev/null
"$ENGINE" run "$MODEL" "And God said" --max-tokens 12 --seed 7 > /tmp/cli_d.$$ 2>/dev/null
cmp -s /tmp/cli_c.$$ /tmp/cli_d.$$ && ok || bad "seeded runs differ"
expect_rc 0 "run --raw" "$ENGINE" run "$MODEL" "And God said" --raw --max-tokens 4 --temperature 0
printf 'And God said\n/bye\n' | "$ENGINE" run --max-tokens 5 --temperature 0 > /tmp/cli_e.$$ 2>/dev/null && [ -s /tmp/cli_e.$$ ] && ok || bad "interactive chat with the default model answers and ends on /bye"
printf 'And God said\n' | "$ENGINE" run --max-tokens 5 --temperature 0 > /dev/null 2>&1 && ok || bad "Ctrl-D ends the chat"
# Bad input: a clear message and a non-zero exit.
expect_rc 1 "model not a folder" "$ENGINE" run /nonexistent "hi"
err | grep -q "is not a folder" && ok || bad "missing model message"
expect_rc nz "negative max tokens" "$ENGINE" run "$MODEL" hi --max-tokens -5
expect_rc 2 "bad temperature" "$ENGINE" run "$MODEL" hi --temperature -1
expect_rc 2 "prompt longer than the context" "$ENGINE" run "$MODEL" "$(python3 -c 'print("word " * 3000)')" --raw
err | grep -q "context holds" && ok || bad "overlong prompt error names the context"
# engine bench: one JSON object per test with the documented keys; --parallel decodes N
# sequences at once and reports their aggregate tokens/s.
expect_rc 0 "bench --json" "$ENGINE" bench "$MODEL" -p 16 -n 8 -r 2 --probe-mib 16 --json -t 1
out | python3 -c '
import json, sys
tests = [json.loads(l) for l in sys.stdin]
assert [t["test"] for t in tests] == ["pp16", "tg8"], tests
for t in tests:
    assert t["tokens_per_s"] > 0 and t["stddev"] >= 0 and t["backend"] == "cpu:0" and t["threads"] == 1
    assert t["parallel"] == 1 and len(t["samples"]) == 2 and t["fraction"] > 0
' && ok || bad "bench --json keys"
expect_rc 0 "bench --parallel" "$ENGINE" bench "$MODEL" -p 0 -n 8 -r 1 --parallel 4 --probe-mib 16 --json -t 1
out | python3 -c '
import json, sys
t = json.loads(sys.stdin.readline())
assert t["test"] == "tg8x4" and t["parallel"] == 4 and t["n_gen"] == 8 and t["tokens_per_s"] > 0, t
' && ok || bad "bench --parallel reports tg8x4"
expect_rc nz "bench --parallel 0" "$ENGINE" bench "$MODEL" --parallel 0
# -d D: every test on top of D cached tokens (llama-bench's --n-depth), named "... @ dD".
expect_rc 0 "bench -d" "$ENGINE" bench "$MODEL" -p 8 -n 4 -d 24 -r 1 --probe-mib 16 --json -t 1
out | python3 -c '
import json, sys
tests = [json.loads(l) for l in sys.stdin]
assert [t["test"] for t in tests] == ["pp8 @ d24", "tg4 @ d24"], tests
assert all(t["n_depth"] == 24 and t["tokens_per_s"] > 0 for t in tests), tests
' && ok || bad "bench -d reports pp8 @ d24 and tg4 @ d24"
expect_rc nz "bench -d -1" "$ENGINE" bench "$MODEL" -d -1
rm -f /tmp/cli_*.$$
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
