// Bad checkpoints give a JS Error that names the file or tensor at fault; nothing crashes.
import { readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { InvalidRequestError } from "../../src/engine/errors.js";
import { loadAddon } from "../../src/native/load-addon.js";
import { tinyModel } from "../helpers/fixtures.js";

async function loadError(dir: string, options = {}): Promise<Error> {
  try {
    const engine = await Engine.load(dir, options);
    await engine.dispose();
  } catch (err) {
    return err as Error;
  }
  throw new Error("the load succeeded");
}

function editJson(file: string, edit: (json: Record<string, any>) => void): void {
  const json = JSON.parse(readFileSync(file, "utf8"));
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

/** Rewrites a safetensors file's JSON header in place, padded to its old length so every data offset stays put. */
function editHeader(file: string, edit: (header: Record<string, any>) => void): void {
  const bytes = readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString("utf8"));
  edit(header);
  const text = JSON.stringify(header);
  if (text.length > length) throw new Error(`the edited header needs ${text.length} bytes, the file has room for ${length}`);
  bytes.write(text.padEnd(length, " "), 8, "utf8");
  writeFileSync(file, bytes);
}

const wte = "model.transformer.wte.weight";

describe("loading a checkpoint", () => {
  it("loads sharded and single-file checkpoints, on the device and dtype asked for", async () => {
    const { dir } = await tinyModel({ shards: 3, dtype: "BF16" });
    // CUDA graphs are asked for but only CUDA has them: the CPU engine says it runs eagerly.
    await using engine = await Engine.load(dir, { device: "cpu", dtype: "bfloat16", cudaGraphs: true });
    // The CPU pads no prompt by default.
    expect(engine.info).toMatchObject({ device: "cpu", dtype: "bfloat16", nLayers: 2, cudaGraphs: false, promptBucket: 1 });
    // The in-process API's thread count is taken as given, whatever the model's size (the server's rule for small
    // models is the router's: src/cluster/cpu-threads.ts).
    await using threaded = await Engine.load(dir, { threads: 2 });
    expect(threaded.info.threads).toBe(2);
    const progress: number[] = [];
    const single = await tinyModel({ shards: 1 });
    await using _ = await Engine.load(single.dir, { onProgress: (done, total) => progress.push(done / total) });
    expect(progress.at(-1)).toBe(1);
    expect(progress.length).toBe(2 + 9 * 2 + 1); // wte, 9 per layer, ln_f, head
  });

  it("pads prompts up to the prompt bucket it is given, alone and in a batch, without changing a token, so near lengths share a shape", async () => {
    const { dir } = await tinyModel();
    await using plain = await Engine.load(dir);
    await using bucketed = await Engine.load(dir, { promptBucket: 16 });
    expect(bucketed.info.promptBucket).toBe(16);
    const rows = [5, 11, 17].map((n, r) => ({ prompt: Array.from({ length: n }, (_, i) => (i * 7 + r) % 50), seed: r }));
    const params = { steps: 8, genLength: 8, blockLength: 4, cache: "dual" as const };
    const setUps: number[][] = [];
    for (const batch of [[rows[0]], [rows[1]], rows]) {
      expect((await bucketed.generate(batch, params)).tokens).toEqual((await plain.generate(batch, params)).tokens);
      setUps.push([bucketed.stepsSetUp, plain.stepsSetUp]);
    }
    // Prompts of 5 and 11 ids both pad to 16 in buckets of 16: the second sets up no step there, but does unpadded.
    expect(setUps[1][0]).toBe(setUps[0][0]);
    expect(setUps[1][1]).toBeGreaterThan(setUps[0][1]);
    expect((await loadError(dir, { promptBucket: -1 })).message).toMatch(/promptBucket must be in \[0, 4096\]/);
  });

  it("keeps each batch shape's decoding steps, so a shape met before sets none up anew", async () => {
    const { dir } = await tinyModel();
    await using engine = await Engine.load(dir);
    expect(engine.stepsSetUp).toBe(0);
    const rows = [9, 14, 6].map((n, r) => ({ prompt: Array.from({ length: n }, (_, i) => (i * 5 + r) % 50), seed: r }));
    const params = { steps: 8, genLength: 8, blockLength: 4, cache: "dual" as const };
    // Three rows (padded), then one (a shorter sequence, unpadded), then two: fewer rows and columns than the
    // first, each on the first one's cache.
    const shapes = [rows, [rows[0]], rows.slice(1)];
    const first = [];
    for (const batch of shapes) first.push((await engine.generate(batch, params)).tokens);
    // A refresh step and a window step for each shape.
    expect(engine.stepsSetUp).toBe(shapes.length * 2);
    for (const [i, batch] of shapes.entries()) expect((await engine.generate(batch, params)).tokens).toEqual(first[i]);
    expect(engine.stepsSetUp).toBe(shapes.length * 2);
    // The plain forward (no cache) keeps its shapes too.
    for (const batch of [...shapes, ...shapes]) await engine.generate(batch, { ...params, cache: "none" });
    expect(engine.stepsSetUp).toBe(shapes.length * 3);
  });

  it("names a missing folder or config.json", async () => {
    expect((await loadError("/nonexistent/model")).message).toMatch(/config\.json: not found/);
    const { dir } = await tinyModel();
    rmSync(path.join(dir, "config.json"));
    expect((await loadError(dir)).message).toMatch(/config\.json/);
  });

  it.each([
    ["not JSON", (dir: string) => writeFileSync(path.join(dir, "config.json"), "{ d_model: 64"), /config\.json: invalid JSON/],
    ["a missing key", (dir: string) => editJson(path.join(dir, "config.json"), (c) => delete c.n_heads), /missing key 'n_heads'/],
    ["a wrong type", (dir: string) => editJson(path.join(dir, "config.json"), (c) => (c.d_model = "64")), /'d_model' must be a positive integer/],
    ["heads that do not divide d_model", (dir: string) => editJson(path.join(dir, "config.json"), (c) => (c.n_heads = 5)), /multiple of n_heads/],
    ["an unsupported switch", (dir: string) => editJson(path.join(dir, "config.json"), (c) => (c.include_bias = true)), /include_bias/],
    ["a mask id outside the vocabulary", (dir: string) => editJson(path.join(dir, "config.json"), (c) => (c.mask_token_id = 1e6)), /mask_token_id/],
  ])("rejects a config.json with %s", async (_name, spoil, message) => {
    const { dir } = await tinyModel();
    spoil(dir);
    expect((await loadError(dir)).message).toMatch(message);
  });

  it("names a tensor that is missing from the index", async () => {
    const { dir } = await tinyModel({ shards: 2 });
    editJson(path.join(dir, "model.safetensors.index.json"), (j) => delete j.weight_map["model.transformer.blocks.1.up_proj.weight"]);
    expect((await loadError(dir)).message).toMatch(/no file is given for tensor 'model\.transformer\.blocks\.1\.up_proj\.weight'/);
  });

  it("names a tensor that is missing from its file", async () => {
    const { dir } = await tinyModel({ shards: 1 });
    // Rename the tensor in the header.
    editHeader(path.join(dir, "model.safetensors"), (header) => {
      header[wte.replace("wte", "wtx")] = header[wte];
      delete header[wte];
    });
    expect((await loadError(dir)).message).toMatch(/model\.safetensors: tensor 'model\.transformer\.wte\.weight' is missing/);
  });

  it("names a tensor with the wrong shape", async () => {
    const { dir } = await tinyModel({ shards: 1 });
    editJson(path.join(dir, "config.json"), (c) => (c.mlp_hidden_size = 96));
    expect((await loadError(dir)).message).toMatch(/ff_proj\.weight' has shape \[128, 64\], expected \[96, 64\]/);
  });

  it("names a tensor with a dtype it does not load", async () => {
    const { dir } = await tinyModel({ shards: 1 });
    // I32 has F32's size, so only the dtype is wrong.
    editHeader(path.join(dir, "model.safetensors"), (header) => (header[wte].dtype = "I32"));
    expect((await loadError(dir)).message).toMatch(/tensor 'model\.transformer\.wte\.weight' has dtype I32/);
  });

  it("refuses a header whose shape's byte size wraps around 64 bits (it would view memory past the file)", async () => {
    const { dir } = await tinyModel({ shards: 1 });
    editHeader(path.join(dir, "model.safetensors"), (header) => {
      // 2^31 x 2^31 F32 elements are 2^64 bytes: 0 once wrapped, which empty offsets would match.
      header[wte].shape = [2 ** 31, 2 ** 31];
      header[wte].data_offsets = [header[wte].data_offsets[0], header[wte].data_offsets[0]];
      delete header.__metadata__; // room for the longer shape in the header's bytes
    });
    expect((await loadError(dir)).message).toMatch(/tensor 'model\.transformer\.wte\.weight': its byte size 0 does not match shape and dtype F32/);
  });

  it("names a truncated file", async () => {
    const { dir } = await tinyModel({ shards: 2 });
    const shard = path.join(dir, "model-00002-of-00002.safetensors");
    truncateSync(shard, statSync(shard).size - 100);
    expect((await loadError(dir)).message).toMatch(/model-00002-of-00002\.safetensors: tensor '.*': truncated file/);
    truncateSync(shard, 4);
    expect((await loadError(dir)).message).toMatch(/model-00002-of-00002\.safetensors: truncated/);
  });

  it("names a missing shard", async () => {
    const { dir } = await tinyModel({ shards: 2 });
    renameSync(path.join(dir, "model-00001-of-00002.safetensors"), path.join(dir, "gone"));
    expect((await loadError(dir)).message).toMatch(/model-00001-of-00002\.safetensors: not found \(needed for tensor/);
  });

  it("reads \\u escapes in config.json as JSON has them: surrogates only in high-low pairs", async () => {
    const { dir } = await tinyModel();
    const file = path.join(dir, "config.json");
    const text = readFileSync(file, "utf8");
    // A key the engine ignores, holding an escaped string (JSON.stringify would write the characters themselves).
    const withName = (escaped: string) => writeFileSync(file, text.replace(/^\{/, `{"name_or_path": "${escaped}",`));
    withName("\\ud83d\\ude00 and \\u00e9");
    await (await Engine.load(dir)).dispose();
    withName("\\ud83d x");
    expect((await loadError(dir)).message).toMatch(/a high surrogate must be followed by a low one/);
    withName("\\ud83d\\u0041");
    expect((await loadError(dir)).message).toMatch(/a high surrogate must be followed by a low one/);
    withName("\\ude00");
    expect((await loadError(dir)).message).toMatch(/a low surrogate without a high one/);
  });

  it("rejects an unknown device or dtype as the caller's mistake, never as a device fault", async () => {
    const { dir } = await tinyModel();
    expect((await loadError(dir, { dtype: "float8" })).message).toMatch(/unknown dtype 'float8'/);
    // libtorch's own message for a bad device string lists every device type, CUDA among them: it used to come back
    // as a DeviceError, which the server takes for a sick device.
    for (const device of ["tpu:0", "bogus", "mps", "meta", "cpu:5", "cpu:0"]) {
      const err = await loadError(dir, { device });
      expect(err, device).toBeInstanceOf(InvalidRequestError);
      expect(err.message).toBe(`device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`);
    }
    if (!loadAddon().cudaAvailable()) {
      const err = await loadError(dir, { device: "cuda" });
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect(err.message).toMatch(/^device cuda was asked for, but (this build of libtorch has no CUDA|this machine has 0 CUDA devices)$/);
    }
  });

  it("refuses a thread count past 4 per core and a seed out of range before loading anything", async () => {
    const { dir } = await tinyModel();
    // OpenMP would start them all at the first parallel operation (100,000 crashed a memory-limited process).
    const refusal = (await loadError(dir, { threads: 100_000 })).message;
    const most = Number(/^load: threads must be an integer in \[0, (\d+)\] \(4 per core; 0: libtorch's default\)$/.exec(refusal)?.[1]);
    expect(most % 4, refusal).toBe(0);
    for (const threads of [most + 1, 2 ** 32 + 1, -1]) expect((await loadError(dir, { threads })).message).toBe(refusal);
    expect((await loadError(dir, { threads: 1.5 })).message).toMatch(/^load: threads must be an integer/);
    await using engine = await Engine.load(dir, { threads: most });
    expect(engine.info.threads).toBe(most);
    const config = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
    for (const seed of [-1, 2 ** 53]) await expect(Engine.random(config, seed)).rejects.toThrow(/^load: seed must be an integer in \[0, 2\^53\)$/);
  });

  it("stops a load when its signal aborts or its engine is disposed, rather than reading every tensor first", async () => {
    const { dir } = await tinyModel({ shards: 2 });
    const controller = new AbortController();
    const reason = new Error("the server is shutting down");
    const aborted = Engine.load(dir, { signal: controller.signal, onProgress: () => controller.abort(reason) });
    await expect(aborted).rejects.toBe(reason);
    await expect(Engine.load(dir, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    // The addon, disposed once its load has read a tensor: the load rejects as disposed (it used to run to its end
    // and resolve). 16 converted layers take ~7 ms to load here, and the first tensor's report reaches this thread
    // in ~1.
    const { dir: larger } = await tinyModel({ dtype: "BF16", config: { d_model: 256, n_layers: 16, mlp_hidden_size: 512 } });
    const native = new (loadAddon().Engine)();
    let disposal: Promise<void> | undefined;
    const load = native.load({ path: larger }, () => (disposal ??= native.dispose()));
    await expect(load).rejects.toMatchObject({ code: "ERR_ENGINE_DISPOSED" });
    await disposal;
  });

  it("fails a load whose progress callback throws, with that error", async () => {
    const { dir } = await tinyModel();
    const failure = new Error("the progress bar broke");
    const calls: number[] = [];
    await expect(
      Engine.load(dir, {
        onProgress: (done) => {
          calls.push(done);
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    // Told once: a load runs to its end, and the callback hears no more after it has thrown.
    expect(calls).toHaveLength(1);
  });

  it("maps the weights instead of copying them, and keeps one copy when it converts", async () => {
    // Measured in a fresh process that does nothing but load, so the test runner's own allocations don't blur it.
    const measureScript = new URL("../helpers/measure-load.mjs", import.meta.url).pathname;
    const measure = (dir: string) =>
      JSON.parse(execFileSync(process.execPath, [measureScript, dir], { encoding: "utf8" })) as { anon: number; file: number };
    const weightBytes = (dir: string) =>
      readdirSync(dir).filter((f) => f.endsWith(".safetensors")).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
    const config = { d_model: 512, n_layers: 4, n_heads: 8, n_kv_heads: 8, mlp_hidden_size: 1024 };

    // F32 on disk, float32 on the CPU: views of the mapping, no anonymous copy.
    const f32 = await tinyModel({ shards: 2, config });
    const mapped = measure(f32.dir);
    expect(mapped.anon).toBeLessThan(0.1 * weightBytes(f32.dir));
    expect(mapped.file).toBeGreaterThan(0.9 * weightBytes(f32.dir));

    // BF16 on disk, float32 on the CPU: one converted copy (twice the bytes), and the mapped pages are let go.
    const bf16 = await tinyModel({ shards: 1, dtype: "BF16", config });
    const converted = measure(bf16.dir);
    expect(converted.anon).toBeGreaterThan(0.9 * 2 * weightBytes(bf16.dir));
    expect(converted.anon).toBeLessThan(1.2 * 2 * weightBytes(bf16.dir));
    expect(converted.file).toBeLessThan(0.1 * weightBytes(bf16.dir));
  });
});
