#!/usr/bin/env python3
"""End-to-end tests of `engine serve` through real HTTP on 127.0.0.1.

Usage: server_test.py --engine PATH [--model DIR] [unittest args, e.g. ApiTest]

Each TestCase class starts its own server (port 0, the port is read from stdout) and stops it
with SIGTERM. Only the standard library is used (http.client, socket, threading). Every wait is
bounded.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ENGINE = None
MODEL = None
FAKE_HUB = None  # tools/hub's fake_hub_server: the stand-in Hugging Face Hub on loopback


class Server:
    """An `engine serve` process on an ephemeral port."""

    def __init__(self, *args, model=None, wait=True, env=None):
        self.log = tempfile.TemporaryFile()
        cmd = [ENGINE, "serve", "--port", "0", "--model", model or MODEL, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("server did not start: %r\n%s" % (line, self.logs()))
        self.port = int(m.group(1))
        if wait:
            self.wait_healthy()

    def wait_healthy(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server never became healthy\n" + self.logs())

    def logs(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body, **kw):
        status, headers, data = self.request("POST", path, body, **kw)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return status, parsed, headers

    def stream(self, path, body, timeout=120):
        """Returns (status, [payload lines]) of an SSE ('data: ...') or NDJSON stream."""
        c = self.conn(timeout)
        try:
            c.request("POST", path, body=json.dumps(body))
            r = c.getresponse()
            lines = []
            for raw in r:
                line = raw.decode().strip()
                if line:
                    lines.append(line)
            return r.status, lines
        finally:
            c.close()

    def metrics(self):
        status, _, data = self.get("/metrics")
        assert status == 200
        out = {}
        for line in data.decode().splitlines():
            if line.startswith("#") or not line:
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def metric(self, name, model="default"):
        return self.metrics().get('%s{model="%s"}' % (name, model), 0.0)

    def wait_idle(self, timeout=30):
        """Waits until no sequence runs or waits and no KV block is held by a sequence."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.metrics()
            if (m.get('tessera_running_sequences{model="default"}') == 0
                    and m.get('tessera_queue_depth{model="default"}') == 0
                    and m.get('tessera_kv_blocks_used{model="default"}') == 0):
                return m
            time.sleep(0.05)
        raise AssertionError("server did not go idle: %r" % self.metrics())


def sse_payloads(lines):
    assert all(l.startswith("data: ") for l in lines), lines
    payloads = [l[len("data: "):] for l in lines]
    assert payloads[-1] == "[DONE]", payloads[-3:]
    return [json.loads(p) for p in payloads[:-1]]


def completion(server, prompt, max_tokens=16, **extra):
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **extra}
    status, data, _ = server.post("/v1/completions", body)
    assert status == 200, data
    return data["choices"][0]["text"]


def run_parallel(fn, items, timeout=150):
    results = [None] * len(items)
    errors = []

    def work(i):
        try:
            results[i] = fn(items[i])
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(items))]
    for t in threads:
        t.start()
    deadline = time.time() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
    if any(t.is_alive() for t in threads):
        raise AssertionError("parallel requests did not finish in %ss" % timeout)
    if errors:
        raise errors[0]
    return results


class ServerTestCase(unittest.TestCase):
    ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        if rc != 0:
            print(cls.server.logs(), file=sys.stderr)
        assert rc == 0, "server exited with %s" % rc


class ApiTest(ServerTestCase):
    CHAT = {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 8, "temperature": 0}

    def test_health_models(self):
        s = self.server
        status, _, body = s.get("/health")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        status, _, body = s.get("/v1/models")
        data = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(data["object"], "list")
        self.assertEqual(data["data"][0]["id"], "default")
        self.assertEqual(data["data"][0]["max_model_len"], 1024)
        self.assertEqual(s.get("/v1/models/default")[0], 200)
        self.assertEqual(s.get("/v1/models/nope")[0], 404)

    def test_chat_completion(self):
        status, data, _ = self.server.post("/v1/chat/completions", self.CHAT)
        self.assertEqual(status, 200, data)
        self.assertEqual(data["object"], "chat.completion")
        choice = data["choices"][0]
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertTrue(choice["message"]["content"])
        self.assertEqual(choice["finish_reason"], "length")
        self.assertEqual(data["usage"]["completion_tokens"], 8)
        self.assertEqual(data["usage"]["total_tokens"], data["usage"]["prompt_tokens"] + 8)
        # max_completion_tokens wins over max_tokens.
        status, data, _ = self.server.post("/v1/chat/completions", {**self.CHAT, "max_completion_tokens": 3})
        self.assertEqual(data["usage"]["completion_tokens"], 3)

    def test_chat_stream_matches(self):
        _, full, _ = self.server.post("/v1/chat/completions", self.CHAT)
        status, lines = self.server.stream(
            "/v1/chat/completions", {**self.CHAT, "stream": True, "stream_options": {"include_usage": True}})
        self.assertEqual(status, 200)
        chunks = sse_payloads(lines)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        self.assertEqual(text, full["choices"][0]["message"]["content"])
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "length")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 8)

    def test_chat_logprobs_and_n(self):
        body = {**self.CHAT, "logprobs": True, "top_logprobs": 3, "n": 2}
        status, data, _ = self.server.post("/v1/chat/completions", body)
        self.assertEqual(status, 200, data)
        self.assertEqual([c["index"] for c in data["choices"]], [0, 1])
        content = data["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(content), 8)
        for entry in content:
            self.assertLessEqual(entry["logprob"], 0.0)
            self.assertEqual(len(entry["top_logprobs"]), 3)
            # Greedy: the chosen token is the most likely one.
            self.assertEqual(entry["top_logprobs"][0]["token"], entry["token"])
            self.assertAlmostEqual(entry["top_logprobs"][0]["logprob"], entry["logprob"], places=5)
            self.assertEqual(bytes(entry["bytes"]).decode(errors="replace"), entry["token"])
        self.assertEqual(data["choices"][0]["message"], data["choices"][1]["message"])  # greedy x2

    def test_completions_prompt_forms(self):
        s = self.server
        text = completion(s, "The king said", 10)
        status, toks, _ = s.post("/tokenize", {"prompt": "The king said"})
        self.assertEqual(status, 200)
        self.assertEqual(toks["count"], len(toks["tokens"]))
        self.assertEqual(completion(s, toks["tokens"], 10), text)  # token ids == the string
        status, data, _ = s.post("/v1/completions", {"prompt": ["The king said", "And it came"], "max_tokens": 4,
                                                    "temperature": 0, "n": 2})
        self.assertEqual(status, 200, data)
        self.assertEqual([c["index"] for c in data["choices"]], [0, 1, 2, 3])
        self.assertEqual(data["choices"][0]["text"], data["choices"][1]["text"])
        self.assertEqual(data["usage"]["completion_tokens"], 16)

    def test_completions_echo_logprobs(self):
        s = self.server
        prompt = "And the king said unto"
        status, data, _ = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 5, "temperature": 0,
                                                    "echo": True, "logprobs": 2})
        self.assertEqual(status, 200, data)
        choice = data["choices"][0]
        self.assertTrue(choice["text"].startswith(prompt))
        n_prompt = data["usage"]["prompt_tokens"]
        lp = choice["logprobs"]
        self.assertEqual(len(lp["tokens"]), n_prompt + 5)
        self.assertIsNone(lp["token_logprobs"][0])
        self.assertTrue(all(x <= 0 for x in lp["token_logprobs"][1:]))
        self.assertEqual(len(lp["top_logprobs"][1]), 2)
        self.assertEqual(lp["text_offset"], sorted(lp["text_offset"]))
        # max_tokens 0 scores the prompt only.
        status, data, _ = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 0})
        self.assertEqual(status, 200, data)
        self.assertEqual(data["choices"][0]["text"], prompt)
        self.assertEqual(data["choices"][0]["logprobs"]["token_logprobs"][1:], lp["token_logprobs"][1:n_prompt])
        # Streaming completions end with [DONE] and carry the same text.
        status, lines = s.stream("/v1/completions", {"prompt": prompt, "max_tokens": 5, "temperature": 0,
                                                     "stream": True})
        text = "".join(c["choices"][0]["text"] for c in sse_payloads(lines))
        self.assertEqual(prompt + text, choice["text"])

    def test_stop_strings(self):
        s = self.server
        text = completion(s, "And the king said", 24)
        words = text.split()
        self.assertGreater(len(words), 4)
        stop = words[3]
        status, data, _ = s.post("/v1/completions", {"prompt": "And the king said", "max_tokens": 24,
                                                    "temperature": 0, "stop": [stop, "zzzz"]})
        self.assertEqual(data["choices"][0]["finish_reason"], "stop")
        self.assertEqual(data["choices"][0]["text"], text[:text.index(stop)])

    def test_greedy_on_device_matches_logits(self):
        # temperature 0 alone is picked on the device (ForwardArgmax); with logprobs the same
        # request goes through the downloaded logits. The text must not change, alone or next to
        # sampled requests (whose steps keep the logits path).
        s = self.server
        prompts = ["The king said", "And it came to pass", "Once upon"]
        argmax_steps = s.metric("tessera_argmax_steps_total")
        fast = [completion(s, p, 16, ignore_eos=True) for p in prompts]
        self.assertGreaterEqual(s.metric("tessera_argmax_steps_total") - argmax_steps, 3 * 15)
        slow = [s.post("/v1/completions", {"prompt": p, "max_tokens": 16, "temperature": 0, "ignore_eos": True,
                                           "logprobs": 1})[1]["choices"][0]["text"] for p in prompts]
        self.assertEqual(fast, slow)
        mixed = run_parallel(lambda i: completion(s, prompts[i % 3], 16, ignore_eos=True) if i < 3 else
                             completion(s, prompts[i % 3], 16, temperature=0.8, seed=i), list(range(6)))
        self.assertEqual(mixed[:3], fast)

    def test_seed_reproducible(self):
        body = {"prompt": "In the beginning", "max_tokens": 12, "temperature": 1.0, "seed": 1234}
        a = self.server.post("/v1/completions", body)[1]["choices"][0]["text"]
        b = self.server.post("/v1/completions", body)[1]["choices"][0]["text"]
        self.assertEqual(a, b)

    def test_tokenize_detokenize(self):
        s = self.server
        _, toks, _ = s.post("/tokenize", {"prompt": "Hello world", "add_special_tokens": False})
        status, back, _ = s.post("/detokenize", {"tokens": toks["tokens"]})
        self.assertEqual((status, back["prompt"]), (200, "Hello world"))
        _, chat_toks, _ = s.post("/tokenize", {"messages": [{"role": "user", "content": "Hi"}]})
        self.assertGreater(chat_toks["count"], 0)
        self.assertEqual(s.post("/detokenize", {"tokens": [5, 999999]})[0], 400)

    def test_response_format_unsupported(self):
        for fmt in ({"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}):
            status, data, _ = self.server.post("/v1/chat/completions", {**self.CHAT, "response_format": fmt})
            self.assertEqual(status, 400)
            self.assertIn("constrained decoding", data["error"]["message"])
        status, _, _ = self.server.post("/v1/chat/completions", {**self.CHAT, "response_format": {"type": "text"}})
        self.assertEqual(status, 200)

    def test_ollama_generate(self):
        s = self.server
        body = {"model": "default", "prompt": "Why is the sky blue?", "options": {"num_predict": 6, "temperature": 0}}
        status, lines = s.stream("/api/generate", body)
        self.assertEqual(status, 200)
        objs = [json.loads(l) for l in lines]
        self.assertTrue(all(o["done"] is False for o in objs[:-1]))
        last = objs[-1]
        self.assertTrue(last["done"])
        self.assertEqual(last["done_reason"], "length")
        self.assertEqual(last["eval_count"], 6)
        for k in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration",
                  "context", "created_at", "model"):
            self.assertIn(k, last)
        streamed = "".join(o["response"] for o in objs)
        status, full, _ = s.post("/api/generate", {**body, "stream": False})
        self.assertEqual(status, 200)
        self.assertEqual(full["response"], streamed)
        self.assertEqual(len(full["context"]), full["prompt_eval_count"] + 6)
        # raw mode, and continuing from a context.
        status, raw, _ = s.post("/api/generate", {**body, "raw": True, "stream": False})
        self.assertEqual(status, 200)
        status, cont, _ = s.post("/api/generate", {"model": "default:latest", "prompt": " and", "stream": False,
                                                  "context": full["context"], "options": {"num_predict": 3}})
        self.assertEqual(status, 200, cont)
        # An empty prompt loads the model.
        status, load, _ = s.post("/api/generate", {"model": "default"})
        self.assertEqual((status, load["done_reason"]), (200, "load"))

    def test_ollama_chat(self):
        s = self.server
        body = {"model": "default", "messages": [{"role": "user", "content": "Hello"}],
                "options": {"num_predict": 5, "temperature": 0}}
        status, lines = s.stream("/api/chat", body)
        objs = [json.loads(l) for l in lines]
        self.assertEqual(status, 200)
        self.assertTrue(objs[-1]["done"])
        self.assertTrue(all(o["message"]["role"] == "assistant" for o in objs))
        status, full, _ = s.post("/api/chat", {**body, "stream": False})
        self.assertEqual(full["message"]["content"], "".join(o["message"]["content"] for o in objs))
        # Same conversation through the OpenAI endpoint: same greedy text.
        _, oa, _ = s.post("/v1/chat/completions", {"messages": body["messages"], "max_tokens": 5, "temperature": 0})
        self.assertEqual(oa["choices"][0]["message"]["content"], full["message"]["content"])

    def test_ollama_metadata(self):
        s = self.server
        status, _, body = s.get("/api/tags")
        tags = json.loads(body)
        self.assertEqual(tags["models"][0]["name"], "default:latest")
        self.assertIn("details", tags["models"][0])
        status, show, _ = s.post("/api/show", {"model": "default"})
        self.assertEqual(status, 200)
        self.assertIn("model_info", show)
        self.assertEqual(show["model_info"]["general.architecture"], "llama")
        self.assertEqual(s.post("/api/show", {"model": "nope"})[0], 404)
        status, _, body = s.get("/api/ps")
        self.assertEqual(json.loads(body)["models"][0]["name"], "default:latest")
        status, _, body = s.get("/api/version")
        self.assertIn("version", json.loads(body))

    def test_metrics_exposition(self):
        completion(self.server, "Hello", 4)
        status, headers, body = self.server.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        text = body.decode()
        for name in ("tessera_http_requests_total", "tessera_queue_depth", "tessera_running_sequences",
                     "tessera_preempted_sequences", "tessera_kv_blocks_used", "tessera_kv_blocks_free",
                     "tessera_prefix_cache_hit_tokens_total", "tessera_prompt_tokens_total",
                     "tessera_generated_tokens_total", "tessera_time_to_first_token_seconds_bucket",
                     "tessera_inter_token_latency_seconds_bucket", "tessera_preemptions_total"):
            self.assertIn(name, text)
        self.assertIn('tessera_http_requests_total{endpoint="/v1/completions",status="200"}', text)

    def test_client_disconnect_cancels(self):
        s = self.server
        before = s.metric("tessera_sequences_cancelled_total")
        c = s.conn(30)
        c.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": "Once", "max_tokens": 1000, "temperature": 0, "ignore_eos": True, "stream": True}))
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        for _ in range(3):
            r.readline()
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        deadline = time.time() + 30
        while time.time() < deadline and s.metric("tessera_sequences_cancelled_total") <= before:
            time.sleep(0.05)
        self.assertGreater(s.metric("tessera_sequences_cancelled_total"), before)
        s.wait_idle()
        # A non-streaming request whose client hangs up is cancelled too. (16 long choices: the
        # bundled model is fast, and the request must still be running when the client leaves.)
        sock = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps({"prompt": "Once", "max_tokens": 1000, "temperature": 0, "ignore_eos": True,
                           "n": 16}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)
        sock.close()
        deadline = time.time() + 30
        while time.time() < deadline and s.metric("tessera_sequences_cancelled_total") <= before + 1:
            time.sleep(0.05)
        self.assertGreater(s.metric("tessera_sequences_cancelled_total"), before + 1)
        s.wait_idle()


class BatchingTest(ServerTestCase):
    # Small steps force chunked prefill next to running decodes.
    ARGS = ["--max-batch-tokens", "32"]

    def test_batch_invariance(self):
        s = self.server
        prompts = ["Prompt %d:" % i + " and the people" * (i % 5) + " said" for i in range(12)]
        alone = [completion(s, p, 20, ignore_eos=True) for p in prompts]
        together = run_parallel(lambda p: completion(s, p, 20, ignore_eos=True), prompts)
        self.assertEqual(together, alone)
        again = run_parallel(lambda p: completion(s, p, 20, ignore_eos=True), prompts)  # prefix-cached now
        self.assertEqual(again, alone)
        s.wait_idle()

    def test_prefix_reuse(self):
        s = self.server
        system = "You are a careful assistant. " * 12
        before = s.metric("tessera_prefix_cache_hit_tokens_total")
        a = completion(s, system + "Question one?", 4)
        completion(s, system + "Question two?", 4)
        hits = s.metric("tessera_prefix_cache_hit_tokens_total") - before
        self.assertGreaterEqual(hits, 64)
        self.assertEqual(completion(s, system + "Question one?", 4), a)  # cached == computed

    def test_chunked_prefill(self):
        s = self.server
        before = s.metric("tessera_prefill_chunks_total")
        ids = [(7 * i) % 4000 + 2 for i in range(200)]
        status, data, _ = s.post("/v1/completions", {"prompt": ids, "max_tokens": 2, "temperature": 0})
        self.assertEqual(status, 200, data)
        self.assertGreaterEqual(s.metric("tessera_prefill_chunks_total") - before, 200 // 32)


class PreemptionTest(ServerTestCase):
    # 768 KiB of KV = 256 tokens (16 blocks) of the default model: 8 sequences of ~90 tokens can
    # not all stay resident, so the youngest are preempted and recomputed.
    ARGS = ["--kv-budget", "768KiB"]

    def test_preemption_keeps_outputs(self):
        s = self.server
        prompts = ["Story %d begins" % i + " once more" * (i % 3) for i in range(8)]
        alone = [completion(s, p, 70, ignore_eos=True) for p in prompts]
        self.assertEqual(s.metric("tessera_preemptions_total"), 0)
        together = run_parallel(lambda p: completion(s, p, 70, ignore_eos=True), prompts)
        self.assertEqual(together, alone)
        self.assertGreater(s.metric("tessera_preemptions_total"), 0)
        m = s.wait_idle()
        self.assertEqual(m['tessera_kv_blocks_used{model="default"}'], 0)

    def test_context_limit_is_kv_capacity(self):
        status, _, models = self.server.request("GET", "/v1/models")
        self.assertEqual(json.loads(models)["data"][0]["max_model_len"], 256)
        status, data, _ = self.server.post("/v1/completions", {"prompt": [5] * 300, "max_tokens": 1})
        self.assertEqual(status, 400)


class LoadTest(ServerTestCase):
    CLIENTS = 64
    SECONDS = 8  # each client keeps sending requests until then

    def one(self, i, n):
        """Request n of client i: a streaming request of one of the three APIs; every 7th one
        hangs up after the first chunks (its sequence must be cancelled, its blocks freed)."""
        s = self.server
        kind = (i + n) % 3
        if (i + n) % 7 == 0:
            c = s.conn(60)
            c.request("POST", "/v1/completions", body=json.dumps(
                {"prompt": "Client %d leaves" % i, "max_tokens": 200, "ignore_eos": True, "stream": True}))
            r = c.getresponse()
            r.readline()
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
            return r.status
        if kind == 0:
            status, lines = s.stream("/v1/chat/completions", {
                "messages": [{"role": "user", "content": "Client %d says hello %d" % (i, n)}],
                "max_tokens": 12, "temperature": 0.7, "seed": i, "stream": True})
            sse_payloads(lines)
        elif kind == 1:
            status, lines = s.stream("/v1/completions", {"prompt": "Client %d" % i, "max_tokens": 12,
                                                         "temperature": 0, "stream": True})
            sse_payloads(lines)
        else:
            status, lines = s.stream("/api/generate", {"model": "default", "prompt": "Client %d" % i,
                                                       "options": {"num_predict": 12}})
            assert json.loads(lines[-1])["done"] is True
        return status

    def client(self, i):
        deadline = time.time() + self.SECONDS
        statuses = []
        while time.time() < deadline or not statuses:
            statuses.append(self.one(i, len(statuses)))
        return statuses

    def test_concurrent_streaming_clients(self):
        start = time.time()
        per_client = run_parallel(self.client, list(range(self.CLIENTS)), timeout=150)
        elapsed = time.time() - start
        answered = sum(len(x) for x in per_client)
        self.assertTrue(all(x and all(st == 200 for st in x) for x in per_client), per_client)
        self.assertLess(elapsed, 150)
        print("load: %d clients, %d requests in %.1fs" % (self.CLIENTS, answered, elapsed), file=sys.stderr)
        m = self.server.wait_idle()
        self.assertEqual(m['tessera_kv_blocks_used{model="default"}'], 0)
        self.assertGreater(m['tessera_sequences_cancelled_total{model="default"}'], 0)
        self.assertEqual(m['tessera_sequences_failed_total{model="default"}'], 0)
        self.assertEqual(m['tessera_sequences_finished_total{model="default"}'] +
                         m['tessera_sequences_cancelled_total{model="default"}'], answered)


class BenchServeTest(ServerTestCase):
    def test_load_generator(self):
        """`engine bench-serve` drives the server at two concurrency levels and reports each."""
        s = self.server
        r = subprocess.run([ENGINE, "bench-serve", "--url", "http://127.0.0.1:%d" % s.port, "-c", "1,4",
                            "--requests", "6", "--prompt-tokens", "16", "--max-tokens", "8", "--json"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        levels = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([x["concurrency"] for x in levels], [1, 4])
        for x in levels:
            self.assertEqual((x["test"], x["requests"], x["failed"]), ("serve_c%d" % x["concurrency"], 6, 0))
            self.assertGreater(x["output_tokens_per_s"], 0)
            self.assertGreater(x["ttft_ms_p99"], 0)
            self.assertGreaterEqual(x["itl_ms_p99"], x["itl_ms_p50"])
        # 1 warm-up + 12 requests, each exactly max_tokens long (EOS ignored), nothing left behind.
        m = s.wait_idle()
        self.assertEqual(m['tessera_sequences_finished_total{model="default"}'], 13)
        self.assertEqual(m['tessera_kv_blocks_used{model="default"}'], 0)

    def test_no_server(self):
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        r = subprocess.run([ENGINE, "bench-serve", "--url", "http://127.0.0.1:%d" % port],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot connect", r.stderr)
        r = subprocess.run([ENGINE, "bench-serve", "--url", "ftp://x"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("http://", r.stderr)


EMBED_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "embedding")


def fixture(name):
    with open(os.path.join(EMBED_FIXTURES, name, "expected.json")) as f:
        return json.load(f)


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(x * x for x in b) ** 0.5
    return dot / (na * nb)


class EncoderTest(ServerTestCase):
    """Embeddings and reranking over HTTP against sentence-transformers' outputs
    (tests/fixtures/embedding, made by make_fixtures.py)."""
    EMBEDDERS = ["bert_mean", "roberta_max", "xlmr_cls", "qwen3_embed"]
    RERANKERS = ["bert_ce", "xlmr_ce", "qwen3_reranker"]
    ARGS = [a for name in EMBEDDERS + RERANKERS for a in ("--model", os.path.join(EMBED_FIXTURES, name))]

    def test_embeddings_match_reference(self):
        s = self.server
        for name in self.EMBEDDERS:
            exp = fixture(name)
            want = exp.get("st_embeddings") or exp["embeddings"]
            idx = [i for i, t in enumerate(exp["texts"]) if t]  # OpenAI refuses empty strings
            # sentence-transformers cuts long inputs silently; here truncation must be asked for.
            status, data, _ = s.post("/v1/embeddings", {"model": name, "input": [exp["texts"][i] for i in idx],
                                                        "truncate": True})
            self.assertEqual(status, 200, data)
            self.assertEqual([d["index"] for d in data["data"]], list(range(len(idx))))
            self.assertEqual(data["model"], name)
            self.assertGreater(data["usage"]["prompt_tokens"], 0)
            for d, i in zip(data["data"], idx):
                self.assertGreaterEqual(cosine(d["embedding"], want[i]), 0.99999, (name, i))
            # base64 is the same floats, little-endian float32.
            status, b64, _ = s.post("/v1/embeddings", {"model": name, "input": exp["texts"][0],
                                                       "encoding_format": "base64"})
            raw = __import__("base64").b64decode(b64["data"][0]["embedding"])
            floats = __import__("struct").unpack("<%df" % (len(raw) // 4), raw)
            self.assertGreaterEqual(cosine(floats, want[idx[0]]), 0.99999)
            # Ollama: /api/embed (list) and the older /api/embeddings (one prompt).
            status, ol, _ = s.post("/api/embed", {"model": name, "input": [exp["texts"][0]]})
            self.assertEqual(status, 200, ol)
            self.assertGreaterEqual(cosine(ol["embeddings"][0], want[idx[0]]), 0.99999)
            status, old, _ = s.post("/api/embeddings", {"model": name, "prompt": exp["texts"][0]})
            self.assertEqual(status, 200, old)
            self.assertGreaterEqual(cosine(old["embedding"], want[idx[0]]), 0.99999)

    def test_embedding_options(self):
        s = self.server
        exp = fixture("bert_mean")
        ids = exp["input_ids"][0][1:-1]  # token ids without [CLS]/[SEP]: the same embedding
        status, by_text, _ = s.post("/v1/embeddings", {"model": "bert_mean", "input": exp["texts"][0]})
        status2, by_ids, _ = s.post("/v1/embeddings", {"model": "bert_mean", "input": ids})
        self.assertEqual((status, status2), (200, 200), by_ids)
        self.assertGreaterEqual(cosine(by_text["data"][0]["embedding"], by_ids["data"][0]["embedding"]), 0.999999)
        status, cut, _ = s.post("/v1/embeddings", {"model": "bert_mean", "input": "Hello", "dimensions": 8})
        self.assertEqual(len(cut["data"][0]["embedding"]), 8)
        self.assertAlmostEqual(sum(x * x for x in cut["data"][0]["embedding"]), 1.0, places=5)
        # Too long: a 400 unless truncation is asked for (Ollama truncates by default).
        status, err, _ = s.post("/v1/embeddings", {"model": "bert_mean", "input": exp["long_text"]})
        self.assertEqual(status, 400, err)
        self.assertIn("truncat", err["error"]["message"])
        status, ok, _ = s.post("/v1/embeddings", {"model": "bert_mean", "input": exp["long_text"], "truncate": True})
        self.assertEqual(status, 200, ok)
        self.assertGreaterEqual(cosine(ok["data"][0]["embedding"], exp.get("st_long_embedding") or exp["long_embedding"]),
                                0.99999)
        status, ol, _ = s.post("/api/embed", {"model": "bert_mean", "input": exp["long_text"]})
        self.assertEqual(status, 200, ol)
        for body in [{"model": "bert_mean"}, {"model": "bert_mean", "input": ""}, {"model": "bert_mean", "input": []},
                     {"model": "bert_mean", "input": [1.5]}, {"model": "bert_mean", "input": [10 ** 9]},
                     {"model": "bert_mean", "input": "x", "encoding_format": "hex"},
                     {"model": "bert_mean", "input": "x", "dimensions": 100000},
                     {"model": "bert_ce", "input": "x"}, {"model": "nobody", "input": "x"}]:
            status, err, _ = s.post("/v1/embeddings", body)
            self.assertIn(status, (400, 404), (body, err))
            self.assertIn("message", err["error"])

    def test_rerank_matches_reference(self):
        s = self.server
        for name in self.RERANKERS:
            exp = fixture(name)
            want = exp.get("st_scores") or exp["scores"]
            for path in ("/v1/rerank", "/rerank"):
                status, data, _ = s.post(path, {"model": name, "query": exp["query"], "documents": exp["documents"]})
                self.assertEqual(status, 200, (name, data))
                got = {r["index"]: r["relevance_score"] for r in data["results"]}
                self.assertEqual(sorted(got), list(range(len(exp["documents"]))))
                for i, w in enumerate(want):
                    self.assertLess(abs(got[i] - w), 1e-4, (name, i, got[i], w))
                scores = [r["relevance_score"] for r in data["results"]]
                self.assertEqual(scores, sorted(scores, reverse=True))
                self.assertEqual(data["results"][0]["document"]["text"], exp["documents"][data["results"][0]["index"]])
                self.assertGreater(data["usage"]["total_tokens"], 0)
        status, data, _ = s.post("/v1/rerank", {"model": "bert_ce", "query": "q", "documents": [{"text": "a"}, "b", "c"],
                                                "top_n": 2, "return_documents": False})
        self.assertEqual((status, len(data["results"])), (200, 2), data)
        self.assertNotIn("document", data["results"][0])
        for body in [{"model": "bert_ce", "documents": ["a"]}, {"model": "bert_ce", "query": "q"},
                     {"model": "bert_ce", "query": "q", "documents": []},
                     {"model": "bert_ce", "query": "q", "documents": [1]},
                     {"model": "bert_mean", "query": "q", "documents": ["a"]}]:
            status, err, _ = s.post("/v1/rerank", body)
            self.assertEqual(status, 400, (body, err))

    def test_kinds_and_listing(self):
        s = self.server
        status, err, _ = s.post("/v1/chat/completions", {"model": "bert_mean",
                                                         "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(status, 400)
        self.assertIn("embedding", err["error"]["message"])
        status, err, _ = s.post("/api/generate", {"model": "qwen3_reranker", "prompt": "hi"})
        self.assertEqual(status, 400)
        status, show, _ = s.post("/api/show", {"model": "qwen3_embed"})
        self.assertEqual((status, show["capabilities"]), (200, ["embedding"]))
        status, show, _ = s.post("/api/show", {"model": "xlmr_ce"})
        self.assertEqual((status, show["capabilities"]), (200, ["rerank"]))
        _, _, body = s.get("/api/ps")
        self.assertEqual(len(json.loads(body)["models"]), 8)  # and the chat model
        # Concurrent requests are all answered (forward passes run on worker threads).
        exp = fixture("bert_mean")
        res = run_parallel(lambda i: s.post("/v1/embeddings", {"model": "bert_mean", "input": exp["texts"][:2]})[0],
                           list(range(16)))
        self.assertEqual(res, [200] * 16)


class ModelManagementTest(unittest.TestCase):
    """Pull through the server from a stand-in Hub, load on first request, keep-alive unloading,
    delete; `engine ps` against the running server."""
    FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")

    @classmethod
    def setUpClass(cls):
        if not FAKE_HUB:
            raise unittest.SkipTest("needs --fake-hub")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hub = subprocess.Popen(
            [FAKE_HUB, "--repo", "tessera-test/llama=" + os.path.join(cls.FIXTURES, "models", "llama_f32_gqa"),
             "--repo", "tessera-test/embed=" + os.path.join(cls.FIXTURES, "embedding", "bert_mean")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        endpoint = cls.hub.stdout.readline().decode().strip()
        cls.env = {"HF_ENDPOINT": endpoint, "HF_HOME": os.path.join(cls.tmp.name, "hf"),
                   "TESSERA_KEEP_ALIVE": "2", "HF_HUB_OFFLINE": "", "HF_TOKEN": ""}
        cls.server = Server(env=cls.env)

    @classmethod
    def tearDownClass(cls):
        if not FAKE_HUB:
            return
        rc = cls.server.stop()
        cls.hub.stdin.close()
        cls.hub.wait(30)
        cls.tmp.cleanup()
        assert rc == 0, cls.server.logs()

    def names(self, path):
        _, _, body = self.server.get(path)
        return [m["name"] for m in json.loads(body)["models"]]

    def test_pull_load_unload_delete(self):
        s = self.server
        self.assertEqual(self.names("/api/tags"), ["default:latest"])
        status, err, _ = s.post("/v1/completions", {"model": "tessera-test/llama", "prompt": "Hi", "max_tokens": 2})
        self.assertEqual(status, 404, err)
        self.assertIn("pull", err["error"]["message"])
        status, err, _ = s.post("/v1/completions", {"model": "../llama", "prompt": "Hi", "max_tokens": 2})
        self.assertEqual(status, 404, err)

        # Streaming pull: Ollama's NDJSON progress, ending in success.
        status, lines = s.stream("/api/pull", {"model": "tessera-test/llama"})
        events = [json.loads(l) for l in lines]
        self.assertEqual((status, events[0]["status"], events[-1]), (200, "pulling manifest", {"status": "success"}))
        self.assertTrue(any(e["status"].startswith("pulling model.safetensors") and e.get("total") for e in events))
        snap = os.path.join(self.env["HF_HOME"], "hub", "models--tessera-test--llama", "snapshots")
        self.assertEqual(len(os.listdir(snap)), 1)
        self.assertIn("tessera-test/llama:latest", self.names("/api/tags"))
        _, _, body = s.get("/v1/models")
        self.assertIn("tessera-test/llama", [m["id"] for m in json.loads(body)["data"]])

        # /api/show describes a cached model from its files, without loading it.
        status, show, _ = s.post("/api/show", {"model": "tessera-test/llama"})
        self.assertEqual((status, show["capabilities"]), (200, ["completion"]), show)
        self.assertEqual(show["model_info"]["llama.context_length"], 256)
        self.assertGreater(show["model_info"]["general.parameter_count"], 0)
        self.assertEqual(self.names("/api/ps"), ["default:latest"])
        status, _, _ = s.post("/api/show", {"model": "tessera-test/none"})
        self.assertEqual(status, 404)

        # Loaded on first request, unloaded after its keep-alive (2 s here).
        status, data, _ = s.post("/v1/completions", {"model": "tessera-test/llama", "prompt": "Hi", "max_tokens": 3,
                                                    "temperature": 0})
        self.assertEqual((status, data["usage"]["completion_tokens"]), (200, 3), data)
        self.assertIn("tessera-test/llama:latest", self.names("/api/ps"))
        r = subprocess.run([ENGINE, "ps", "--port", str(s.port)], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tessera-test/llama", r.stdout)
        deadline = time.time() + 20
        while "tessera-test/llama:latest" in self.names("/api/ps") and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.names("/api/ps"), ["default:latest"])  # the model named at start stays

        # Ollama's load and unload calls.
        status, data, _ = s.post("/api/generate", {"model": "tessera-test/llama"})
        self.assertEqual((status, data["done_reason"]), (200, "load"))
        status, data, _ = s.post("/api/generate", {"model": "tessera-test/llama", "keep_alive": 0})
        self.assertEqual((status, data["done_reason"]), (200, "unload"))
        self.assertEqual(self.names("/api/ps"), ["default:latest"])
        status, err, _ = s.post("/api/generate", {"model": "tessera-test/llama", "keep_alive": "soon"})
        self.assertEqual(status, 400, err)

        # Non-streaming pull of an embedding model, then used by name.
        status, data, _ = s.post("/api/pull", {"model": "tessera-test/embed", "stream": False})
        self.assertEqual((status, data), (200, {"status": "success"}))
        status, data, _ = s.post("/v1/embeddings", {"model": "tessera-test/embed", "input": "hello"})
        self.assertEqual(status, 200, data)

        # Delete: gone from the cache and the lists; again is a 404; only DELETE is allowed.
        status, _, _ = s.request("DELETE", "/api/delete", {"model": "tessera-test/llama"})
        self.assertEqual(status, 200)
        self.assertFalse(os.path.exists(os.path.dirname(snap)))
        self.assertNotIn("tessera-test/llama:latest", self.names("/api/tags"))
        status, _, _ = s.request("DELETE", "/api/delete", {"model": "tessera-test/llama"})
        self.assertEqual(status, 404)
        status, _, _ = s.request("POST", "/api/delete", {"model": "tessera-test/embed"})
        self.assertEqual(status, 405)
        status, _, _ = s.request("DELETE", "/api/delete", {"model": "tessera-test/embed"})
        self.assertEqual(status, 200)  # loaded but idle: unloaded, then removed
        self.assertEqual(self.names("/api/ps"), ["default:latest"])

        # A repository the Hub does not have: an error line in the stream, a 404 without one.
        status, lines = s.stream("/api/pull", {"model": "tessera-test/missing"})
        self.assertIn("error", json.loads(lines[-1]))
        status, data, _ = s.post("/api/pull", {"model": "tessera-test/missing", "stream": False})
        self.assertEqual(status, 404, data)
        for body in [{}, {"model": "/etc"}, {"model": 5}]:
            status, data, _ = s.post("/api/pull", body)
            self.assertEqual(status, 400, (body, data))


class MultiModelTest(ServerTestCase):
    FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "models", "llama_f32_gqa")
    ARGS = ["--model", FIXTURE]

    def test_two_models(self):
        s = self.server
        _, _, body = s.get("/v1/models")
        ids = [m["id"] for m in json.loads(body)["data"]]
        self.assertEqual(ids, ["default", "llama_f32_gqa"])
        status, data, _ = s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2})
        self.assertEqual(status, 400)  # which model? several are served
        self.assertIn("model", data["error"]["message"])
        status, data, _ = s.post("/v1/completions", {"model": "llama_f32_gqa", "prompt": "Hi", "max_tokens": 3,
                                                    "temperature": 0})
        self.assertEqual((status, data["model"], data["usage"]["completion_tokens"]), (200, "llama_f32_gqa", 3))
        # Both models decode at once (their schedulers share the device through one lock).
        prompts = [("default", "Hello %d" % i) for i in range(4)] + [("llama_f32_gqa", "Hi %d" % i) for i in range(4)]
        run_parallel(lambda mp: completion(s, mp[1], 8, model=mp[0]), prompts)
        status, _, body = s.get("/api/tags")
        self.assertEqual(len(json.loads(body)["models"]), 2)


class QueueBoundTest(ServerTestCase):
    ARGS = ["--max-running", "1", "--max-queue", "1"]

    def test_queue_full_is_503(self):
        s = self.server
        body = {"prompt": "Busy", "max_tokens": 150, "temperature": 0, "ignore_eos": True}

        def send(_):
            status, data, headers = s.post("/v1/completions", body)
            return status, data, headers

        results = run_parallel(send, list(range(6)))
        statuses = sorted(r[0] for r in results)
        self.assertIn(503, statuses)
        self.assertIn(200, statuses)
        for status, data, headers in results:
            if status == 503:
                self.assertEqual(headers.get("Retry-After"), "1")
                self.assertEqual(data["error"]["code"], "queue_full")
        s.wait_idle()
        self.assertEqual(s.post("/v1/completions", {**body, "max_tokens": 2})[0], 200)


class AbuseTest(ServerTestCase):
    ARGS = ["--set", "server_header_timeout_ms=800", "--set", "server_body_timeout_ms=800",
            "--set", "server_max_body=64KiB"]

    def assertError(self, status, data, want=400):
        self.assertEqual(status, want, data)
        self.assertIsInstance(data["error"]["message"], str)
        self.assertIn("type", data["error"])
        self.assertIn("code", data["error"])

    def test_bad_bodies(self):
        s = self.server
        for raw in ("{", "not json", "[1, 2]", "", '{"messages": "hi"}', "\"str\"", '{"a": 1}'):
            status, data, _ = s.post("/v1/chat/completions", raw)
            self.assertError(status, data)
        status, data, _ = s.post("/v1/completions", b'{"prompt": "\xff\xfe"}')
        self.assertError(status, data)
        status, data, _ = s.post("/v1/completions", "[" * 5000 + "]" * 5000)
        self.assertError(status, data)

    def test_wrong_types_and_ranges(self):
        s = self.server
        base = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        bad = [{"max_tokens": "10"}, {"max_tokens": -1}, {"max_tokens": 10 ** 9}, {"max_tokens": 2 ** 70},
               {"max_tokens": 1.5}, {"temperature": "hot"}, {"temperature": -1}, {"temperature": 5},
               {"top_p": 2}, {"stream": "yes"}, {"stop": 5}, {"stop": [1]}, {"n": 0}, {"n": 100},
               {"seed": "x"}, {"logprobs": 1}, {"top_logprobs": 50, "logprobs": True}, {"top_logprobs": 2},
               {"messages": []}, {"messages": [{"content": "no role"}]}, {"messages": [{"role": "user", "content": 5}]},
               {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
               {"stream_options": 3}, {"response_format": "json"}]
        for patch in bad:
            status, data, _ = s.post("/v1/chat/completions", {**base, **patch})
            self.assertError(status, data)
        for body in ({"prompt": [1, -5]}, {"prompt": [1, 999999]}, {"prompt": [[1, 2], "x", 3]}, {"prompt": 5},
                     {"prompt": []}, {}, {"prompt": "x", "echo": "yes"}, {"prompt": [5] * 2000}):
            status, data, _ = s.post("/v1/completions", body)
            self.assertError(status, data)

    def test_unknown_model_and_routes(self):
        s = self.server
        status, data, _ = s.post("/v1/chat/completions", {"model": "gpt-9", "messages": [{"role": "user",
                                                                                          "content": "x"}]})
        self.assertError(status, data, 404)
        self.assertEqual(data["error"]["code"], "model_not_found")
        status, data, _ = s.post("/v1/nope", {})
        self.assertEqual(status, 404)
        status, _, _ = s.get("/v1/chat/completions")
        self.assertEqual(status, 405)
        # Ollama endpoints answer in Ollama's error shape.
        status, data, _ = s.post("/api/generate", "{bad")
        self.assertEqual(status, 400)
        self.assertIsInstance(data["error"], str)
        status, data, _ = s.post("/api/generate", {"model": "nope", "prompt": "x"})
        self.assertEqual(status, 404)
        status, data, _ = s.post("/api/generate", {"model": "default", "prompt": "x", "format": "json"})
        self.assertEqual(status, 400)
        status, data, _ = s.post("/api/chat", {"model": "default", "messages": "x"})
        self.assertEqual(status, 400)

    def test_oversized_body(self):
        status, data, _ = self.server.post("/v1/completions", json.dumps({"prompt": "x" * 100000}))
        self.assertError(status, data, 413)

    def test_slow_loris(self):
        s = self.server
        # Headers that never finish: closed after the header timeout.
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        start = time.time()
        self.assertEqual(sock.recv(100), b"")
        self.assertLess(time.time() - start, 5)
        sock.close()
        # A body that never finishes: closed after the body timeout.
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
        start = time.time()
        self.assertEqual(sock.recv(100), b"")
        self.assertLess(time.time() - start, 5)
        sock.close()
        # An idle keep-alive connection is dropped too; the server still serves.
        self.assertEqual(s.get("/health")[0], 200)
        self.assertTrue(completion(s, "Still alive", 2))

    def test_garbage_http(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        sock.sendall(b"\x00\x01 garbage\r\n\r\n")
        data = sock.recv(1000)
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 400"), data)
        sock.close()
        self.assertEqual(self.server.get("/health")[0], 200)


def main():
    global ENGINE, MODEL, FAKE_HUB
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True)
    parser.add_argument("--fake-hub")
    parser.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "default"))
    args, rest = parser.parse_known_args()
    ENGINE, MODEL, FAKE_HUB = args.engine, os.path.abspath(args.model), args.fake_hub
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
