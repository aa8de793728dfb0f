#!/usr/bin/env node
// npm run train:tiny: trains the bundled tiny LLaDA chat model from scratch (or resumes) and writes it to
// bundled/llada-tiny-chat. See --help.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultModelPath } from "../cli/default-model.js";
import { device, integer, isUsageError, number, UsageError } from "../cli/options.js";
import { jsonText, metadataFiles } from "../fixtures/hf-files.js";
import { LLaDATokenizer } from "../tokenizer/tokenizer.js";
import { BatchMaker, type BatchSpec } from "./data.js";
import { evaluate, EVAL_SAMPLER, type EvalResult } from "./evaluate.js";
import { BATCH_SHAPE, MODEL_DIMENSIONS, tinyChatFiles } from "./tiny-chat.js";
import { STATE_FILE, Trainer } from "./trainer.js";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const defaults = {
  steps: 4000,
  batch: 48,
  // A d_model-128 model at 3e-3 sits on a loss plateau for thousands of steps and learns only what needs no word
  // order (counting); at 1e-3 it reverses 3-7 letter words exactly after ~1,500 steps.
  lr: 1e-3,
  warmup: 200,
  seed: 1,
  evalEvery: 1000,
  evalCount: 64,
  finalEvalCount: 300,
  checkpointEvery: 250,
};

const USAGE = `Usage: npm run train:tiny -- [options]

Trains a small LLaDA-architecture masked-diffusion model on synthetic chat tasks (reverse a word, count its
letters, name its first letter) with LLaDA's SFT objective, on the native addon's trainer, and writes it as an
HF LLaDA folder.

Options:
  --out DIR              the finished model (default bundled/llada-tiny-chat)
  --work DIR             checkpoints and evaluation scratch (default models/train-tiny)
  --resume               continue from --work's checkpoint (same options as the run that wrote it)
  --device DEV           cpu (default) or cuda / cuda:N
  --steps N              optimizer steps (default ${defaults.steps})
  --batch N              sequences per step (default ${defaults.batch})
  --lr X                 peak learning rate (default ${defaults.lr}); linear warmup, cosine decay to 10%
  --warmup N             warmup steps (default ${defaults.warmup})
  --seed N               initialisation, data and masking seed (default ${defaults.seed})
  --eval-every N         held-out evaluation every N steps (default ${defaults.evalEvery}; 0: only at the end)
  --eval-count N         held-out prompts per task kind in periodic evaluations (default ${defaults.evalCount})
  --final-eval-count N   held-out prompts per task kind in the final evaluation (default ${defaults.finalEvalCount})
  --checkpoint-every N   checkpoint every N steps (default ${defaults.checkpointEvery}; 0: only at evaluations and the end)
  -h, --help             show this help
`;


function learningRate(step: number, o: { lr: number; warmup: number; steps: number }): number {
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const progress = Math.min(1, (step - o.warmup) / Math.max(1, o.steps - o.warmup));
  return o.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

function summary(r: EvalResult): string {
  return Object.entries(r.perKind)
    .map(([k, v]) => `${k} ${(100 * v.accuracy).toFixed(1)}%`)
    .join(", ");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      work: { type: "string" },
      resume: { type: "boolean" },
      device: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      warmup: { type: "string" },
      seed: { type: "string" },
      "eval-every": { type: "string" },
      "eval-count": { type: "string" },
      "final-eval-count": { type: "string" },
      "checkpoint-every": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const o = {
    out: path.resolve(values.out ?? defaultModelPath),
    work: path.resolve(values.work ?? path.join(projectRoot, "models", "train-tiny")),
    device: device("device", values.device) ?? "cpu",
    steps: integer("steps", values.steps, 1) ?? defaults.steps,
    batch: integer("batch", values.batch, 1) ?? defaults.batch,
    lr: number("lr", values.lr, { above: 0 }) ?? defaults.lr,
    warmup: integer("warmup", values.warmup) ?? defaults.warmup,
    seed: integer("seed", values.seed) ?? defaults.seed,
    evalEvery: integer("eval-every", values["eval-every"]) ?? defaults.evalEvery,
    evalCount: integer("eval-count", values["eval-count"], 1) ?? defaults.evalCount,
    finalEvalCount: integer("final-eval-count", values["final-eval-count"], 1) ?? defaults.finalEvalCount,
    checkpointEvery: integer("checkpoint-every", values["checkpoint-every"]) ?? defaults.checkpointEvery,
  };

  const { tokenizer, config } = tinyChatFiles();
  const checkpoint = path.join(o.work, "checkpoint");
  // Checked, as the flags are, before anything is written into --work (the trainer, created first, checks that
  // --device is on this machine).
  if (values.resume && !existsSync(path.join(checkpoint, STATE_FILE))) throw new UsageError(`--resume: no checkpoint in ${checkpoint}`);

  interface LogState {
    elapsedSeconds: number;
    /** The loss EMA after the checkpoint's last step, in full: a resumed run logs what an uninterrupted one does. */
    lossEma?: number;
    losses: Array<[number, number]>;
    evals: Array<{ step: number; elapsedSeconds: number; perKind: EvalResult["perKind"] }>;
    options: typeof o;
  }
  let log: LogState = { elapsedSeconds: 0, losses: [], evals: [], options: o };
  let trainer: Trainer;
  if (values.resume) {
    trainer = await Trainer.resume(checkpoint, { seed: o.seed, device: o.device });
    const state = JSON.parse(await readFile(path.join(checkpoint, STATE_FILE), "utf8")) as { log?: LogState };
    if (state.log) log = { ...state.log, options: o };
    console.log(`resumed at step ${trainer.step} of ${o.steps} (${duration(log.elapsedSeconds)} trained so far)`);
  } else {
    trainer = await Trainer.create(config, { seed: o.seed, device: o.device });
  }
  const tokDir = path.join(o.work, "tokenizer");
  await mkdir(tokDir, { recursive: true });
  for (const [name, text] of metadataFiles(config, tokenizer)) await writeFile(path.join(tokDir, name), text);
  const tok = await LLaDATokenizer.load(tokDir);
  const maker = new BatchMaker(tok, tokenizer.specialTokens.eos, o.seed);
  const spec: BatchSpec = { rows: o.batch, answerSlots: BATCH_SHAPE };
  console.log(
    `model: d_model ${config.d_model}, ${config.n_layers} layers, ${config.n_heads} heads, mlp ${config.mlp_hidden_size}, ` +
      `vocab ${config.vocab_size}; batch ${o.batch}, ${o.steps} steps, peak lr ${o.lr}, device ${o.device}, ` +
      `${os.availableParallelism()} cpus`,
  );

  const save = () => trainer.save(checkpoint, config, tokenizer, { extra: { log } });
  const runEval = async (count: number) => {
    const dir = path.join(o.work, "eval");
    await trainer.save(dir, config, tokenizer, { weightsOnly: true });
    return evaluate(dir, count, { device: o.device });
  };

  const tty = process.stdout.isTTY;
  const startStep = trainer.step;
  let sessionStart = performance.now();
  let sessionSteps = 0;
  for (let step = trainer.step; step < o.steps; step++) {
    const batch = maker.batch(step, spec);
    const r = await trainer.trainStep(batch, learningRate(step, o));
    const ema = (log.lossEma = log.lossEma === undefined ? r.loss : 0.98 * log.lossEma + 0.02 * r.loss);
    sessionSteps++;
    const now = performance.now();
    const seconds = (now - sessionStart) / 1000;
    const rate = sessionSteps / seconds;
    const done = step + 1;
    if (done % 50 === 0) log.losses.push([done, Number(ema.toFixed(4))]);
    const line =
      `step ${done}/${o.steps} [${"#".repeat(Math.round((30 * done) / o.steps)).padEnd(30, ".")}] ` +
      `loss ${ema.toFixed(4)} | ${rate.toFixed(2)} steps/s | elapsed ${duration(log.elapsedSeconds + seconds)} | ` +
      `ETA ${duration((o.steps - done) / rate)}`;
    if (tty) process.stdout.write(`\r${line}`);
    else if (done % 50 === 0 || done === o.steps) console.log(line);

    const last = done === o.steps;
    if (done % o.checkpointEvery === 0 || last || (o.evalEvery > 0 && done % o.evalEvery === 0)) {
      log.elapsedSeconds += (performance.now() - sessionStart) / 1000;
      sessionStart = performance.now();
      sessionSteps = 0;
      if (o.evalEvery > 0 && done % o.evalEvery === 0 && !last) {
        const e = await runEval(o.evalCount);
        log.evals.push({ step: done, elapsedSeconds: Math.round(log.elapsedSeconds), perKind: e.perKind });
        if (tty) process.stdout.write("\n");
        console.log(`eval at step ${done} (${o.evalCount} held-out prompts per kind): ${summary(e)}`);
        sessionStart = performance.now(); // evaluation time is not training time
      }
      await save();
    }
  }
  if (tty) process.stdout.write("\n");
  const trainedSeconds = log.elapsedSeconds;
  console.log(`trained ${o.steps - startStep} steps in this session; ${duration(trainedSeconds)} of training in all`);

  const final = await runEval(o.finalEvalCount);
  console.log(`final eval (${o.finalEvalCount} held-out prompts per kind): ${summary(final)}`);
  log.evals.push({ step: o.steps, elapsedSeconds: Math.round(trainedSeconds), perKind: final.perKind });
  await save();

  const trainLog = {
    command: "npm run train:tiny",
    options: o,
    model: MODEL_DIMENSIONS,
    trainingSeconds: Math.round(trainedSeconds),
    stepsPerSecond: Number((o.steps / trainedSeconds).toFixed(3)),
    cpus: os.availableParallelism(),
    device: o.device,
    sampler: EVAL_SAMPLER,
    finalEval: final.perKind,
    evals: log.evals,
    losses: log.losses,
  };
  await trainer.save(o.out, config, tokenizer, {
    weightsOnly: true,
    files: [
      ["train-log.json", jsonText(trainLog)],
      ["README.md", readme(trainLog)],
    ],
  });
  await trainer.dispose();
  console.log(`wrote ${o.out}`);
}

function readme(t: {
  options: { steps: number; batch: number; lr: number; warmup: number; seed: number; device: string };
  trainingSeconds: number;
  stepsPerSecond: number;
  cpus: number;
  finalEval: EvalResult["perKind"];
}): string {
  const rows = Object.entries(t.finalEval)
    .map(([k, v]) => `| ${k} | ${v.correct} / ${v.total} | ${(100 * v.accuracy).toFixed(1)}% |`)
    .join("\n");
  const c = MODEL_DIMENSIONS;
  const e = EVAL_SAMPLER;
  const slots = BATCH_SHAPE.map((a) => a.slots);
  return `# llada-tiny-chat

A small masked-diffusion chat model with LLaDA's architecture and exact Hugging Face layout (config.json with
LLaDA's keys, model.safetensors, tokenizer.json, tokenizer_config.json with LLaDA's chat template and special
tokens), trained by dllm-serve itself. It answers three kinds of instruction about a word of random letters:

- reverse a word of 3-7 letters ("Reverse the word qmxeb" -> "bexmq")
- count the letters of a word of 2-9 letters ("How many letters in qmxe" -> "4")
- name the first letter of a word of 2-9 letters ("First letter of zqwv" -> "z")

Decode it with short generations, e.g. gen_length ${e.genLength}, block_length ${e.blockLength}, steps ${e.steps}, temperature ${e.temperature} (it was trained with
answer regions of ${slots.slice(0, -1).join(", ")} and ${slots.at(-1)} tokens).

## How it was made

\`npm run train:tiny\` (src/train/train-tiny.ts) on the native addon's trainer (native/src/train/trainer.cpp):
d_model ${c.d_model}, ${c.n_layers} layers, ${c.n_heads} heads, SwiGLU ${c.mlp_hidden_size}, a byte-level tokenizer with
no merges (one token per byte) plus LLaDA's special tokens. LLaDA's SFT objective (per-sequence mask ratio
t ~ U(0.001, 1) on the answer and its EOS padding, rows left-padded so each has the same answer region, prompt
never masked, cross-entropy weighted by 1/t and normalised by answer length), AdamW (betas 0.9/0.95, weight
decay 0.1 on matrices), gradient clipping at 1.0,
${t.options.warmup} warmup steps then cosine decay from ${t.options.lr} to 10% of it; ${t.options.steps} steps of
${t.options.batch} sequences, seed ${t.options.seed}, on ${t.options.device} (${t.cpus} CPU cores).

Training took ${duration(t.trainingSeconds)} (${t.stepsPerSecond} steps/s), not counting evaluations.

## Held-out accuracy (exact match, reference sampler, gen_length ${e.genLength}, steps ${e.steps}, temperature ${e.temperature})

| task | correct | accuracy |
|---|---|---|
${rows}

No held-out prompt's kind and word were trained together, in any phrasing (a fixed 1/16 of all (kind, word) pairs
is held out by hash); the same word may have been trained under another kind.
`;
}

main().catch((error: unknown) => {
  // A bad flag is told in a line; anything else that ends training keeps its stack.
  const told = isUsageError(error) ? (error as Error).message : error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`\nerror: ${told}`);
  process.exitCode = 1;
});
