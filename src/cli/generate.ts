#!/usr/bin/env node
// `npm run generate` / `node dist/cli/generate.js`: one generation from the command line, streamed block by block.
import { parseArgs } from "node:util";
import { DTYPES } from "../engine/engine.js";
import { InvalidRequestError } from "../engine/errors.js";
import { nearestSteps } from "../model/algorithms.js";
import { Model, samplerParams, type GenerationParams } from "../model/model.js";
import { defaultModel, defaultModelPath } from "./default-model.js";
import { device as deviceName, integer, number, oneOf, UsageError } from "./options.js";
import { loadProgress } from "./progress.js";

const DEFAULT_PROMPT = "Reverse the word model";

const HELP = `Usage: node dist/cli/generate.js [options] [prompt]

Generates an answer with a LLaDA model and prints it as each block is committed. Without a prompt it asks
"${DEFAULT_PROMPT}", one of the bundled tiny model's tasks.

Options:
  --model-path <dir>     HF LLaDA folder (config.json, safetensors, tokenizer.json)
                         (default: the bundled tiny model, ${defaultModelPath})
  --device <name>        cpu, cuda, cuda:N (default: cpu)
  --dtype <name>         float32, bfloat16, float16 (default: float32 on cpu, bfloat16 on cuda)
  --raw                  send the prompt as is, without the chat template
  --gen-length <n>       tokens to generate (default: 64)
  --block-length <n>     semi-autoregressive block size (default: 32, or gen-length when shorter)
  --steps <n>            denoising steps (default: gen-length)
  --temperature <t>      sampling temperature (default: 0)
  --cfg-scale <s>        classifier-free guidance scale (default: 0)
  --remasking <mode>     low_confidence or random (default: low_confidence)
  --seed <n>             sampling seed (default: random)
  --json                 print the whole result as JSON instead of streaming text
  -h, --help             show this help
`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      "model-path": { type: "string" },
      device: { type: "string", default: "cpu" },
      dtype: { type: "string" },
      raw: { type: "boolean", default: false },
      "gen-length": { type: "string" },
      "block-length": { type: "string" },
      steps: { type: "string" },
      temperature: { type: "string" },
      "cfg-scale": { type: "string" },
      remasking: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  // Every option is read before the model loads, which can take long: a typo is reported at once.
  // The default prompt stands in for a missing one only: an empty one ('') is generated from as given.
  const prompt = positionals.length > 0 ? positionals.join(" ") : DEFAULT_PROMPT;
  const device = deviceName("device", values.device) ?? "cpu";
  const dtype = oneOf("dtype", values.dtype, DTYPES) ?? (device.startsWith("cuda") ? "bfloat16" : "float32");
  const params: GenerationParams = {
    genLength: integer("gen-length", values["gen-length"], 1) ?? 64,
    blockLength: integer("block-length", values["block-length"], 1),
    steps: integer("steps", values.steps, 1),
    temperature: number("temperature", values.temperature, { atLeast: 0 }),
    cfgScale: number("cfg-scale", values["cfg-scale"], { atLeast: 0 }),
    remasking: oneOf("remasking", values.remasking, ["low_confidence", "random"]),
  };
  const seed = integer("seed", values.seed);
  checkLengths(params);
  const modelPath = values["model-path"] ?? defaultModel();

  const model = await Model.load({ modelPath, device, dtype, onProgress: loadProgress(`loading ${modelPath}`) });
  try {
    const input = values.raw ? { prompt } : { messages: [{ role: "user", content: prompt }] };
    const started = performance.now();
    const result = await model.generate(input, { ...params, seed, onBlock: values.json ? undefined : (e) => process.stdout.write(e.delta) });
    const secs = (performance.now() - started) / 1000;
    if (values.json) {
      process.stdout.write(JSON.stringify({ ...result, seconds: secs }, null, 2) + "\n");
    } else {
      process.stdout.write("\n");
      process.stderr.write(
        `[${result.finishReason}] ${result.usage.promptTokens} prompt + ${result.usage.completionTokens} completion tokens, ` +
          `${result.forwards} forwards, ${secs.toFixed(2)} s, seed ${result.seed}\n`,
      );
    }
  } finally {
    await model.dispose();
  }
}

/**
 * The sampler's rules on the lengths, told in the flags' names rather than the API's: its default block length
 * (samplerParams), blocks that divide the length and steps that divide into the blocks. The engine has these rules
 * only once the model has loaded (with the bounds its context sets, left to it), and samplerParams checks only the
 * first; the HTTP API rounds the length up to whole blocks instead (src/http/request.ts).
 */
function checkLengths(params: GenerationParams): void {
  let resolved;
  try {
    resolved = samplerParams(params);
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    throw new UsageError(err.message.replace(/\b(genLength|blockLength)\b/g, (name) => (name === "genLength" ? "--gen-length" : "--block-length")));
  }
  const { genLength, blockLength, steps } = resolved;
  // A default block length that does not divide the length is samplerParams' error above.
  if (genLength % blockLength !== 0) throw new UsageError(`--gen-length ${genLength} is not a multiple of --block-length ${blockLength}`);
  const blocks = genLength / blockLength;
  if (steps % blocks !== 0) {
    throw new UsageError(
      `--steps ${steps} must be a multiple of the number of blocks (--gen-length ${genLength} / --block-length ${blockLength} = ${blocks}); ` +
        `try ${nearestSteps(steps, blocks).join(" or ")}`,
    );
  }
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
