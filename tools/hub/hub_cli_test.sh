#!/usr/bin/env bash
# engine pull/list/show/rm/ps end to end against the stand-in Hub (fake_hub_server), with a
# temporary HF_HOME. No network: everything is on loopback.
#   hub_cli_test.sh ENGINE FAKE_HUB_SERVER
set -euo pipefail
ENGINE=$1
FAKE=$2
TMP=$(mktemp -d)
FIFO=$TMP/stdin
mkfifo "$FIFO"
cleanup() {
  exec 9>&- || true
  [ -n "${FAKE_PID:-}" ] && wait "$FAKE_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The server lives until its stdin (our fd 9) closes. It drops the first transfer of shard 1.
"$FAKE" --drop-first 100000 < "$FIFO" > "$TMP/endpoint" &
FAKE_PID=$!
exec 9>"$FIFO"
for _ in $(seq 50); do [ -s "$TMP/endpoint" ] && break; sleep 0.1; done
export HF_ENDPOINT=$(cat "$TMP/endpoint")
export HF_HOME=$TMP/hf
export XDG_CONFIG_HOME=$TMP/config
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TESSERA_MODELS_FILE
[ -n "$HF_ENDPOINT" ] || fail "the stand-in Hub did not start"

# pull: prints the snapshot folder; plain progress lines when stderr is not a terminal.
DIR=$("$ENGINE" pull tessera-test/tiny-chat 2>"$TMP/pull.err") || { cat "$TMP/pull.err"; fail "pull"; }
grep -q "pulling model-00001-of-00002.safetensors" "$TMP/pull.err" || fail "no progress lines"
grep -q "retrying model-00001-of-00002.safetensors" "$TMP/pull.err" || fail "no resume after the drop"
case "$DIR" in "$HF_HOME"/hub/models--tessera-test--tiny-chat/snapshots/*) ;; *) fail "snapshot $DIR";; esac
[ -L "$DIR/config.json" ] || fail "config.json is not a link"
[ "$(readlink "$DIR/config.json" | cut -c1-12)" = "../../blobs/" ] || fail "link target"
[ ! -e "$DIR/pytorch_model.bin" ] || fail "pulled a .bin"
[ -f "$HF_HOME/hub/models--tessera-test--tiny-chat/refs/main" ] || fail "no refs/main"

# Second pull: up to date.
"$ENGINE" pull tessera-test/tiny-chat 2>"$TMP/pull2.err" >/dev/null
grep -q "up to date" "$TMP/pull2.err" || { cat "$TMP/pull2.err"; fail "second pull downloaded"; }

# Without libcurl (TESSERA_LIBCURL names a library that does not exist): a cached model still
# serves and local commands work; a download fails with what to install. The engine links
# neither libcurl nor libcrypto: both are dlopen'ed for downloads only.
if readelf -d "$ENGINE" | grep -E 'NEEDED.*(libcurl|libssl|libcrypto)'; then fail "engine links libcurl/OpenSSL"; fi
NOCURL=(env TESSERA_LIBCURL=libtessera-test-no-curl.so.4)
"${NOCURL[@]}" "$ENGINE" pull tessera-test/tiny-chat 2>"$TMP/err" >/dev/null ||
  { cat "$TMP/err"; fail "cached pull without libcurl"; }
grep -q "downloads need libcurl.*using the cached snapshot" "$TMP/err" || { cat "$TMP/err"; fail "no-libcurl warning"; }
"${NOCURL[@]}" "$ENGINE" show tessera-test/tiny-chat >/dev/null || fail "show without libcurl"
if "${NOCURL[@]}" "$ENGINE" pull tessera-test/tiny-embed 2>"$TMP/err"; then fail "pulled without libcurl"; fi
grep -q "downloads need libcurl.*apt install libcurl4" "$TMP/err" || { cat "$TMP/err"; fail "no-libcurl message"; }
if "${NOCURL[@]}" "$ENGINE" ps --port 1 2>"$TMP/err"; then fail "ps without a server"; fi
grep -q "no Tessera server is listening" "$TMP/err" || fail "ps message without libcurl"
# Debian's GnuTLS flavour of libcurl (what git installs) serves as well, where present.
CURL_FLAVOUR=()
if ldconfig -p | grep 'libcurl-gnutls\.so\.4 ' >/dev/null; then CURL_FLAVOUR=(env TESSERA_LIBCURL=libcurl-gnutls.so.4); fi

# A user alias, then list / show.
mkdir -p "$XDG_CONFIG_HOME/tessera"
echo '{"tiny-embed": "tessera-test/tiny-embed"}' > "$XDG_CONFIG_HOME/tessera/models.json"
"${CURL_FLAVOUR[@]}" "$ENGINE" pull tiny-embed >/dev/null 2>&1 || fail "pull by user alias"
"$ENGINE" list > "$TMP/list.out"
grep -q "^tessera-test/tiny-chat .*LlamaForCausalLM .*text .*bfloat16" "$TMP/list.out" || { cat "$TMP/list.out"; fail "list"; }
grep -q "^tessera-test/tiny-embed (tiny-embed) .*embedding" "$TMP/list.out" || { cat "$TMP/list.out"; fail "list embed"; }
"$ENGINE" list --json | python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m)==2 and m[0]["architecture"]=="LlamaForCausalLM", m'
"$ENGINE" list --catalogue | grep -q "^tiny-embed .*tessera-test/tiny-embed .*yes" || fail "catalogue"
"$ENGINE" show tessera-test/tiny-chat > "$TMP/show.out"
grep -q "context length *2048" "$TMP/show.out" || { cat "$TMP/show.out"; fail "show context"; }
grep -q "license *apache-2.0" "$TMP/show.out" || fail "show license"
grep -q "parameters *150K (150000)" "$TMP/show.out" || { cat "$TMP/show.out"; fail "show parameters"; }
"$ENGINE" show --json tiny-embed | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["modality"]=="embedding", d'

# Errors: unknown repo, unknown alias, a folder outside the cache.
if "$ENGINE" pull tessera-test/missing 2>"$TMP/err"; then fail "pulled a missing repo"; fi
grep -q "not found" "$TMP/err" || { cat "$TMP/err"; fail "missing repo message"; }
if "$ENGINE" show no-such-alias 2>"$TMP/err"; then fail "showed an unknown alias"; fi
grep -q "unknown model" "$TMP/err" || fail "unknown alias message"
mkdir "$TMP/folder"
if "$ENGINE" rm "$TMP/folder" 2>"$TMP/err"; then fail "removed a folder"; fi
grep -q "outside the Hugging Face cache" "$TMP/err" || fail "rm folder message"
[ -d "$TMP/folder" ] || fail "the folder is gone"

# ps with no server.
if "$ENGINE" ps --port 1 2>"$TMP/err"; then fail "ps without a server"; fi
grep -q "no Tessera server is listening" "$TMP/err" || fail "ps message"

# rm.
"$ENGINE" rm tessera-test/tiny-chat tiny-embed 2>/dev/null
[ ! -e "$HF_HOME/hub/models--tessera-test--tiny-chat" ] || fail "rm left the model"
[ "$("$ENGINE" list --json)" = "[]" ] || fail "list after rm"

# Offline with nothing cached: a clear error, no network.
if HF_HUB_OFFLINE=1 "$ENGINE" pull tessera-test/tiny-chat 2>"$TMP/err" >/dev/null; then fail "offline pull"; fi
grep -q "HF_HUB_OFFLINE" "$TMP/err" || fail "offline message"
echo "hub_cli_test: all checks passed"
