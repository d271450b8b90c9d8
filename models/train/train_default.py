#!/usr/bin/env python3
"""Trains Tessera's bundled default model: a small Llama-architecture causal LM on the King James
Version of the Bible (public domain; Debian package bible-kjv-text, extracted by
prepare_corpus.sh), saved as a Hugging Face folder (bf16 safetensors, config.json,
tokenizer.json, tokenizer_config.json with a chat template, generation_config.json).

Held-out data: every 50th verse. Reports the held-out perplexity of the model and of a unigram
baseline (add-one smoothed token frequencies of the training verses, same tokenizer) in
report.json.

Runs on the GPU machine (torch, transformers, tokenizers):
  python3 train_default.py --corpus kjv.txt --out DIR [--steps 1500]
"""
import argparse
import json
import math
import os
import random
import time

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

SPECIALS = ["<s>", "</s>", "<unk>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] | trim }}\n{% endfor %}")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def build_tokenizer(train_lines, vocab):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers_regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train_lines, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return tok


def tokenizers_regex(pattern):
    from tokenizers import Regex
    return Regex(pattern)


def batches(ids, seq, batch, rng):
    n = len(ids) - seq - 1
    while True:
        starts = [rng.randrange(n) for _ in range(batch)]
        x = torch.tensor([ids[s:s + seq + 1] for s in starts])
        yield x[:, :-1], x[:, 1:]


@torch.no_grad()
def eval_ppl(model, ids, seq, device):
    model.eval()
    nll, count = 0.0, 0
    for s in range(0, len(ids) - 1, seq):
        chunk = ids[s:s + seq + 1]
        if len(chunk) < 2:
            break
        x = torch.tensor([chunk[:-1]], device=device)
        y = torch.tensor([chunk[1:]], device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x).logits.float()
        nll += torch.nn.functional.cross_entropy(logits[0], y[0], reduction="sum").item()
        count += y.numel()
    model.train()
    return math.exp(nll / count)


def unigram_ppl(train_ids, eval_ids, vocab):
    counts = [1] * vocab
    for t in train_ids:
        counts[t] += 1
    total = sum(counts)
    nll = -sum(math.log(counts[t] / total) for t in eval_ids[1:])
    return math.exp(nll / (len(eval_ids) - 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = random.Random(0)
    lines = [l.strip() for l in open(args.corpus, encoding="utf-8") if l.strip()]
    held = [l for i, l in enumerate(lines) if i % 50 == 49]
    train = [l for i, l in enumerate(lines) if i % 50 != 49]
    tok = build_tokenizer(train, args.vocab)
    vocab = tok.get_vocab_size()
    enc = lambda ls: [i for l in ls for i in tok.encode(l + "\n", add_special_tokens=False).ids]
    train_ids, held_ids = enc(train), enc(held)
    print(f"train {len(train_ids)} tokens, held-out {len(held_ids)} tokens, vocab {vocab}", flush=True)

    config = LlamaConfig(vocab_size=vocab, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=48,
                         max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=True, bos_token_id=0, eos_token_id=1)
    device = "cuda"
    model = LlamaForCausalLM(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps, pct_start=0.05)
    gen = batches(train_ids, args.seq, args.batch, rng)
    t0 = time.time()
    best = (float("inf"), None)
    for step in range(1, args.steps + 1):
        x, y = next(gen)
        x, y = x.to(device), y.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps:
            ppl = eval_ppl(model, held_ids, args.seq, device)
            print(f"step {step} loss {loss.item():.3f} held-out ppl {ppl:.2f} ({time.time() - t0:.0f}s)", flush=True)
            if ppl < best[0]:
                best = (ppl, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])
    model = model.to(torch.bfloat16).cpu()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    model.generation_config.do_sample = True
    model.generation_config.temperature = 0.8
    model.generation_config.top_p = 0.95
    model.generation_config.save_pretrained(args.out)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": CHAT_TEMPLATE,
                   "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1024,
                   "clean_up_tokenization_spaces": False}, f, indent=1)
    # Perplexity of the saved bf16 weights, evaluated in float32 as transformers would load them.
    ref = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32).to(device)
    model_ppl = eval_ppl(ref, held_ids, args.seq, device)
    report = {"corpus": "King James Version (Debian bible-kjv-text 4.38), every 50th verse held out",
              "train_tokens": len(train_ids), "heldout_tokens": len(held_ids), "vocab": vocab,
              "parameters": sum(p.numel() for p in ref.parameters()), "steps": args.steps,
              "heldout_perplexity": round(model_ppl, 3),
              "unigram_baseline_perplexity": round(unigram_ppl(train_ids, held_ids, vocab), 3),
              "train_seconds": round(time.time() - t0, 1), "transformers": transformers.__version__,
              "torch": torch.__version__, "device": torch.cuda.get_device_name()}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    ids = tok.encode("And God said,").ids
    out = ref.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids), dtype=torch.long,
                       device=device), max_new_tokens=40, do_sample=False)
    print("sample:", tok.decode(out[0].tolist()))


if __name__ == "__main__":
    main()
