// Tiny LLaDA checkpoints in exact HF layout, written into temporary folders, and their weights for the reference.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { readSafetensors, writeSafetensors } from "../../src/model/safetensors.js";
import { writeTinyLLaDA, type TinyLLaDAOptions } from "../../src/fixtures/tiny-llada.js";
import type { RefConfig, RefWeights } from "../reference/forward.js";
import { tempDir } from "./temp-dir.js";

/** Writes a tiny checkpoint into a fresh temporary folder, removed after the test file. */
export async function tinyModel(options: TinyLLaDAOptions = {}) {
  return writeTinyLLaDA(tempDir("dllm-tiny-"), options);
}

export function readConfig(dir: string): RefConfig {
  return JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")) as RefConfig;
}

/** Every tensor of a checkpoint folder, as float64 (exact for F32/F16/BF16), for the reference. */
export function readWeights(dir: string): RefWeights {
  const index = path.join(dir, "model.safetensors.index.json");
  const files = existsSync(index)
    ? [...new Set(Object.values(JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string>))]
    : ["model.safetensors"];
  const weights: RefWeights = new Map();
  for (const file of files) {
    for (const [name, t] of readSafetensors(path.join(dir, file))) weights.set(name, { shape: t.shape, data: t.data });
  }
  return weights;
}

/** Rewrites one tensor of a checkpoint in place (same dtype), e.g. to make a token certain. */
export function editTensor(dir: string, name: string, edit: (data: Float32Array, shape: number[]) => void): void {
  const index = path.join(dir, "model.safetensors.index.json");
  const file = existsSync(index)
    ? (JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string>)[name]
    : "model.safetensors";
  const full = path.join(dir, file);
  const tensors = readSafetensors(full);
  const dtypes = new Set([...tensors.values()].map((t) => t.dtype));
  if (dtypes.size !== 1) throw new Error(`${full}: mixed dtypes`);
  const out = new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]));
  const target = out.get(name);
  if (!target) throw new Error(`${full}: no tensor ${name}`);
  edit(target.data, target.shape);
  writeSafetensors(full, out, [...dtypes][0] as "F32" | "F16" | "BF16");
}

/** A tiny checkpoint loaded by the engine, with its config and weights for the reference and its eot id. */
export async function engineWithReference(options: TinyLLaDAOptions = {}) {
  const model = await tinyModel(options);
  return {
    engine: await Engine.load(model.dir),
    config: readConfig(model.dir),
    weights: readWeights(model.dir),
    eot: model.specialTokens.eot,
  };
}

/** A prompt of ordinary tokens only (the special tokens sit above the byte-level vocabulary). */
export function ordinaryPrompt(n: number, offset: number): number[] {
  return Array.from({ length: n }, (_, i) => (offset * 31 + i * 17) % 250);
}

/** max |a - b| / max |b|: the error relative to the expected values' scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return err / scale;
}
