#!/usr/bin/env python3
"""LLaDA's reference sampler (generate.py semantics) in plain PyTorch, for benchmarks/sampler-cpu.mjs (CPU, weights
from a model folder) and benchmarks/decoders-gpu.mjs (any device, random weights at a given config).

The model forward follows LLaDA's HF modelling code: RMSNorm in fp32 cast back before the weight, rotate-half
RoPE in fp32 (inv_freq = 1/theta^(arange(0, hd, 2)/hd)), fully bidirectional SDPA with a key-padding mask for
left-padded batches, SwiGLU MLP, ln_f, then the untied LM head. The sampler loop is generate.py's, cost included:
a full forward over prompt + generation at every step, a softmax over the whole vocabulary at every position, a
torch.topk per row, per-block num_transfer_tokens and left padding with EOS. Everything runs in fp32 under
torch.inference_mode on torch.set_num_threads(2). Only what the benchmarks use is implemented: --temperature
(0 by default; above 0, generate.py's Gumbel noise: float64 logits, torch.rand, exp(logits) / (-log u)^t),
low-confidence remasking, no CFG, no EOS options. It follows the current generate.py (with attention_mask), where
temperature 0 leaves the logits untouched and the softmax runs in the logits' dtype; an earlier revision cast the
logits to float64 for both (noise of exponent 0, and the softmax), which made every step dearer still.

    python3 benchmarks/reference_sampler.py --model DIR --prompt-len 64 --gen-length 128 --steps 64 \
        --block-length 32 [--batch 1] [--positions absolute|per-row]
    python3 benchmarks/reference_sampler.py --random-config JSON --device cuda --dtype bfloat16 ...

--random-config builds the model from a config.json object with N(0, 0.02) weights (RMSNorm weights 1) directly
on --device in --dtype (default cpu, float32); the forward then runs in that dtype, RMSNorm statistics and RoPE in
fp32 as LLaDA's code does.

Its one mode (no flag needed): it keeps the model loaded and runs one generate per line of stdin, timing each (model
loading is not timed); benchmarks/reference-server.mjs is its client. The benchmarks interleave the reference's runs with
dllm-serve's, so that load from elsewhere on the machine hits both alike, and do the warm-up and take the medians
themselves (benchmarks/rounds.mjs, benchmarks/median.mjs).

--positions: "absolute" (the default) is what LLaDA's HF code does: RoPE positions 0..T-1 whatever the padding,
so padding shifts a left-padded prompt. "per-row" starts each row's positions at its first real token, as
dllm-serve does (a row then computes what it would alone). The cost is the same either way.
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

# The CPU wheel warns at import when NumPy is absent; nothing here needs NumPy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

PREFIX = "model.transformer."
LAYER_WEIGHTS = ("attn_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_norm", "ff_proj", "up_proj", "ff_out")


def make_prompts(batch, prompt_len):
    """Deterministic prompts of ordinary token ids (< 250), lengths prompt_len, prompt_len - 3, ... (at least 1).
    benchmarks/sampler-cpu.mjs builds the very same ones (makePrompts)."""
    prompts = []
    for r in range(batch):
        length = max(1, prompt_len - 3 * r)
        prompts.append([(r * 53 + i * 29 + (i * i) % 11) % 250 for i in range(length)])
    return prompts


# ---------------------------------------------------------------------------------------------------------------
# Model


def load_state(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    state = {}
    for name in files:
        state.update(load_file(os.path.join(model_dir, name), device="cpu"))
    return state


def random_weights(c, device, dtype, seed):
    """A name -> tensor function giving N(0, 0.02) matrices and unit norm weights, made on the device."""
    d, kv = c["d_model"], (c.get("n_kv_heads") or c["n_heads"]) * (c["d_model"] // c["n_heads"])
    hidden, vocab = c["mlp_hidden_size"], c.get("embedding_size") or c["vocab_size"]
    shapes = {
        "q_proj": (d, d), "k_proj": (kv, d), "v_proj": (kv, d), "attn_out": (d, d),
        "ff_proj": (hidden, d), "up_proj": (hidden, d), "ff_out": (d, hidden),
    }
    generator = torch.Generator(device=device).manual_seed(seed)

    def make(name):
        leaf = name.split(".")[-2]
        if leaf in ("attn_norm", "ff_norm", "ln_f"):
            return torch.ones(d, device=device, dtype=dtype)
        shape = (vocab, d) if name in ("wte.weight", "ff_out.weight") else shapes[leaf]
        return (torch.randn(shape, generator=generator, device=device, dtype=torch.float32) * 0.02).to(dtype)

    return make


class LLaDA:
    def __init__(self, model_dir=None, config=None, device="cpu", dtype=torch.float32, seed=0):
        if config is None:
            with open(os.path.join(model_dir, "config.json")) as f:
                config = json.load(f)
        c = config
        self.device = torch.device(device)
        self.d_model = c["d_model"]
        self.n_layers = c["n_layers"]
        self.n_heads = c["n_heads"]
        self.n_kv_heads = c.get("n_kv_heads") or self.n_heads
        self.head_dim = self.d_model // self.n_heads
        self.rope_theta = float(c["rope_theta"])
        self.eps = float(c["rms_norm_eps"])
        self.mask_id = c["mask_token_id"]
        self.eos_id = c["eos_token_id"]

        if model_dir is not None:
            state = load_state(model_dir)
            w = lambda name: state[PREFIX + name].to(device=self.device, dtype=dtype).contiguous()  # noqa: E731
        else:
            w = random_weights(c, self.device, dtype, seed)
        self.wte = w("wte.weight")
        self.layers = [{k: w(f"blocks.{i}.{k}.weight") for k in LAYER_WEIGHTS} for i in range(self.n_layers)]
        self.ln_f = w("ln_f.weight")
        self.lm_head = w("ff_out.weight")
        self.inv_freq = 1.0 / (
            self.rope_theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.device) / self.head_dim)
        )

    def rms_norm(self, x, weight):
        dtype = x.dtype
        xf = x.to(torch.float32)
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * xf.to(dtype)

    def rope_tables(self, positions):
        """positions [B, T] int64 -> cos, sin [B, 1, T, head_dim] fp32."""
        freqs = positions.to(torch.float32).unsqueeze(-1) * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rope(t, cos, sin):
        tf = t.to(torch.float32)
        half = tf.shape[-1] // 2
        rotated = torch.cat((-tf[..., half:], tf[..., :half]), dim=-1)
        return (tf * cos + rotated * sin).to(t.dtype)

    def forward(self, ids, key_mask, cos, sin):
        """ids [B, T]; key_mask [B, 1, 1, T] bool (True = attend) or None -> logits [B, T, V] fp32."""
        B, T = ids.shape
        H, KV, D = self.n_heads, self.n_kv_heads, self.head_dim
        x = F.embedding(ids, self.wte)
        for l in self.layers:
            n = self.rms_norm(x, l["attn_norm"])
            q = F.linear(n, l["q_proj"]).view(B, T, H, D).transpose(1, 2)
            k = F.linear(n, l["k_proj"]).view(B, T, KV, D).transpose(1, 2)
            v = F.linear(n, l["v_proj"]).view(B, T, KV, D).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if KV != H:
                k = k.repeat_interleave(H // KV, dim=1)
                v = v.repeat_interleave(H // KV, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=0.0, is_causal=False)
            x = x + F.linear(a.transpose(1, 2).reshape(B, T, H * D), l["attn_out"])
            h = self.rms_norm(x, l["ff_norm"])
            x = x + F.linear(F.silu(F.linear(h, l["ff_proj"])) * F.linear(h, l["up_proj"]), l["ff_out"])
        return F.linear(self.rms_norm(x, self.ln_f), self.lm_head)


# ---------------------------------------------------------------------------------------------------------------
# Sampler: generate.py's loop with low-confidence remasking, no CFG.


def add_gumbel_noise(logits, temperature):
    """generate.py's: at temperature 0 the logits as they are; else exp(logits) / (-log u)^t in float64."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


def num_transfer_tokens(block_mask_index, steps):
    """Per row and step of one block: masked // steps, the first masked % steps steps one more."""
    masked = block_mask_index.sum(dim=1, keepdim=True)
    base, remainder = masked // steps, masked % steps
    counts = torch.zeros(masked.size(0), steps, dtype=torch.int64, device=masked.device) + base
    for r in range(masked.size(0)):
        counts[r, : int(remainder[r])] += 1
    return counts


def generate(model, prompts, steps, gen_length, block_length, positions_mode, temperature=0.0):
    B = len(prompts)
    P = max(len(p) for p in prompts)
    T = P + gen_length
    # Left padding with EOS; the attention mask covers the prompt (padding = 0) and the generation (1).
    x = torch.full((B, T), model.mask_id, dtype=torch.int64)
    attention_mask = torch.ones(B, T, dtype=torch.bool)
    for r, p in enumerate(prompts):
        pad = P - len(p)
        x[r, :pad] = model.eos_id
        x[r, pad:P] = torch.tensor(p, dtype=torch.int64)
        attention_mask[r, :pad] = False
    x, attention_mask = x.to(model.device), attention_mask.to(model.device)
    key_mask = None if bool(attention_mask.all()) else attention_mask.view(B, 1, 1, T)
    if positions_mode == "per-row":
        positions = (attention_mask.to(torch.int64).cumsum(1) - 1).clamp_min(0)
    else:
        positions = torch.arange(T, dtype=torch.int64, device=model.device).unsqueeze(0).expand(B, T)
    cos, sin = model.rope_tables(positions)  # LLaDA's HF code caches these tables too

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks
    forwards = 0
    for nb in range(num_blocks):
        b0, b1 = P + nb * block_length, P + (nb + 1) * block_length
        counts = num_transfer_tokens(x[:, b0:b1] == model.mask_id, steps_per_block)
        for i in range(steps_per_block):
            mask_index = x == model.mask_id
            logits = model.forward(x, key_mask, cos, sin)  # full forward over prompt + generation
            forwards += 1
            x0 = torch.argmax(add_gumbel_noise(logits, temperature), dim=-1)
            p = F.softmax(logits, dim=-1)  # full vocabulary, every position
            x0_p = torch.gather(p, dim=-1, index=x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, b1:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -math.inf)
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for r in range(B):
                _, select = torch.topk(confidence[r], k=int(counts[r, i]))
                transfer[r, select] = True
            x[transfer] = x0[transfer]
    return x[:, P:], forwards


def synchronize(model):
    """Waits for the device, so that wall-clock times cover the work."""
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def build_model(args):
    dtype = getattr(torch, args.dtype)
    if args.random_config:
        return LLaDA(config=json.loads(args.random_config), device=args.device, dtype=dtype, seed=args.seed)
    return LLaDA(args.model, device=args.device, dtype=dtype)


def serve(model, args):
    """One generate per stdin line, so that a driver can interleave these runs with its own.

    Each line is a JSON object {"batch": B, "positions": "absolute" | "per-row"} (both optional); each answer is a
    JSON line {"seconds", "tokens", "forwards", "prompts", "generated"}. Ends at end of input."""
    card = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else "cpu"
    sys.stdout.write(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__, "card": card}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        batch = int(req.get("batch", args.batch))
        prompts = make_prompts(batch, args.prompt_len)
        synchronize(model)
        t0 = time.perf_counter()
        tokens, forwards = generate(
            model, prompts, args.steps, args.gen_length, args.block_length, req.get("positions", args.positions), args.temperature
        )
        synchronize(model)
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds, "tokens": batch * args.gen_length, "forwards": forwards}
        out.update(prompts=prompts, generated=tokens.tolist())
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a HF LLaDA folder")
    source.add_argument("--random-config", help="a config.json object: random weights at its shapes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random-config's weights")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--positions", choices=("absolute", "per-row"), default="absolute")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with torch.inference_mode():
        serve(build_model(args), args)


if __name__ == "__main__":
    main()
