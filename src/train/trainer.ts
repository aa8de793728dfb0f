// A typed wrapper over the native Trainer, plus checkpoints: an HF LLaDA folder (config.json, model.safetensors,
// tokenizer files) that Model.load serves as is, with optimizer.safetensors and trainer_state.json beside it.
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { loadAddon } from "../native/load-addon.js";
import type { NativeStepResult, NativeTensor, NativeTrainer, NativeTrainerAddon } from "../native/addon-types.js";
import { encodeSafetensors, readSafetensors, type TensorData } from "../model/safetensors.js";
import { jsonText, metadataFiles, type ByteLevelTokenizer } from "../fixtures/hf-files.js";

export interface TrainerOptions {
  seed: number;
  device?: string;
  weightDecay?: number;
  /** <= 0: no clipping. */
  clipNorm?: number;
  beta1?: number;
  beta2?: number;
  /** Masking ratios are drawn from U(maskEps, 1). */
  maskEps?: number;
}

export interface Batch {
  /** [rows * length] token ids: each row's left padding, prompt, answer and EOS padding. */
  tokens: Int32Array;
  /** [rows] left padding tokens before each prompt (no padding when absent): unseen by attention. */
  padding?: Int32Array;
  /** [rows] prompt lengths (the never-masked part of each row after its padding). */
  promptLengths: Int32Array;
}

export const WEIGHTS_FILE = "model.safetensors";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "trainer_state.json";

function native(): NativeTrainer {
  return new ((loadAddon() as unknown as NativeTrainerAddon).Trainer)();
}

function toTensors(record: Record<string, NativeTensor>): Array<[string, TensorData]> {
  return Object.entries(record).map(([name, t]) => [name, { shape: t.shape, data: t.data }]);
}

function fromFile(file: string): Record<string, NativeTensor> {
  const out: Record<string, NativeTensor> = {};
  for (const [name, t] of readSafetensors(file)) out[name] = { shape: t.shape, data: Float32Array.from(t.data) };
  return out;
}

export class Trainer {
  readonly #native: NativeTrainer;
  #step: number;

  private constructor(n: NativeTrainer, step: number) {
    this.#native = n;
    this.#step = step;
  }

  /** Seeded random initialisation from a config.json object. */
  static async create(config: object, options: TrainerOptions): Promise<Trainer> {
    const n = native();
    try {
      const { step } = await n.create({ configJson: JSON.stringify(config), ...options });
      return new Trainer(n, step);
    } catch (err) {
      await n.dispose();
      throw err;
    }
  }

  /** Resumes from a checkpoint folder: its weights, optimizer moments and step count. */
  static async resume(dir: string, options: TrainerOptions): Promise<Trainer> {
    const n = native();
    try {
      await n.create({ path: dir, ...options });
      const state = JSON.parse(await readFile(path.join(dir, STATE_FILE), "utf8")) as { step: number };
      const { step } = await n.importState({ step: state.step, tensors: fromFile(path.join(dir, OPTIMIZER_FILE)) });
      return new Trainer(n, step);
    } catch (err) {
      await n.dispose();
      throw err;
    }
  }

  /** Optimizer steps taken so far. */
  get step(): number {
    return this.#step;
  }

  async trainStep(batch: Batch, lr: number): Promise<NativeStepResult> {
    const padding = batch.padding ?? new Int32Array(batch.promptLengths.length);
    const r = await this.#native.trainStep(batch.tokens, padding, batch.promptLengths, lr);
    this.#step = r.step;
    return r;
  }

  /** Logits [rows * T * embeddingSize] of unpadded rows [rows * T]. */
  logits(tokens: Int32Array, rows: number): Promise<Float32Array> {
    return this.#native.logits(tokens, rows);
  }

  async weights(): Promise<Array<[string, TensorData]>> {
    return toTensors(await this.#native.exportWeights());
  }

  /**
   * Writes a checkpoint folder: an HF LLaDA model (config.json, model.safetensors in F32, tokenizer files,
   * generation_config.json) and, unless `weightsOnly`, optimizer.safetensors and trainer_state.json (the step and
   * `extra`). Written into a temporary sibling and renamed, so an interrupted save never leaves a torn folder.
   */
  async save(
    dir: string,
    config: Record<string, unknown>,
    tokenizer: ByteLevelTokenizer,
    options: { extra?: Record<string, unknown>; weightsOnly?: boolean; files?: Array<[string, string]> } = {},
  ): Promise<void> {
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const files: Array<[string, string | Buffer]> = metadataFiles(config, tokenizer);
    files.push([WEIGHTS_FILE, encodeSafetensors(await this.weights(), "F32", { format: "pt" })]);
    if (!options.weightsOnly) {
      const state = await this.#native.exportState();
      files.push([OPTIMIZER_FILE, encodeSafetensors(toTensors(state.tensors), "F32")]);
      files.push([STATE_FILE, jsonText({ step: state.step, ...options.extra })]);
    }
    files.push(...(options.files ?? []));
    for (const [name, content] of files) await writeFile(path.join(tmp, name), content);
    const old = `${dir}.old-${process.pid}`;
    if (existsSync(dir)) await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  }

  dispose(): Promise<void> {
    return this.#native.dispose();
  }
}
