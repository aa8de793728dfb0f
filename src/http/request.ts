// Validation of /v1/chat/completions and /v1/completions bodies: OpenAI's fields plus the seed system's
// (steps, block_length, cfg_scale, remasking, generation_algorithm, threshold, factor) and low_threshold. Every
// error names the field. The result is what the in-process API takes.
import type { RequestOptions } from "../api/server.js";
import { stopStrings, type GenerationInput } from "../model/model.js";
import { AlgorithmError, DEFAULT_BLOCK_LENGTH, nearestSteps, resolveAlgorithm } from "../model/algorithms.js";
import { SEEDS } from "../model/seeds.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { invalid } from "./errors.js";

export interface RequestDefaults {
  /** The default generation_algorithm (--algorithm). */
  algorithm: string;
  /** false: messages are joined into a raw prompt instead of going through the chat template. */
  chatTemplate: boolean;
  maxSequenceLength: number;
  /** --max-queue: a request's choices wait in the queue together, so no request may have more. */
  maxQueue?: number;
}

export interface ParsedRequest {
  /** One per prompt: a chat request has one, /v1/completions may send a list. */
  inputs: GenerationInput[];
  /** Choices per prompt (OpenAI's n). Choice i of a prompt decodes with seed + i when a seed is given. */
  n: number;
  options: RequestOptions;
  stream: boolean;
  /** stream_options.include_usage: a stream ends with a usage chunk. */
  includeUsage: boolean;
}

type Body = Record<string, unknown>;

const DEFAULT_MAX_TOKENS = 128;
const DEFAULT_STEPS = 128;
const MAX_STOP_SEQUENCES = 4;
/** Most choices one request may ask for, prompts × n (OpenAI's own limit on n). */
export const MAX_CHOICES = 128;

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" || typeof v === "undefined" ? `an ${typeof v}` : `a ${typeof v}`;
}

function optional<T>(body: Body, field: string, read: (v: unknown) => T): T | undefined {
  const v = body[field];
  return v === undefined || v === null ? undefined : read(v);
}

function number(field: string, min: number, max: number, { integer = false, exclusiveMin = false } = {}) {
  return (v: unknown): number => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(`'${field}' must be a number, not ${typeName(v)}`, field);
    if (integer && !Number.isInteger(v)) throw invalid(`'${field}' must be an integer`, field);
    if (v < min || (exclusiveMin && v === min) || v > max) {
      throw invalid(`'${field}' must be ${exclusiveMin ? "greater than" : "at least"} ${min} and at most ${max}, got ${v}`, field);
    }
    return v;
  };
}

function boolean(field: string) {
  return (v: unknown): boolean => {
    if (typeof v !== "boolean") throw invalid(`'${field}' must be a boolean, not ${typeName(v)}`, field);
    return v;
  };
}

function string(field: string) {
  return (v: unknown): string => {
    if (typeof v !== "string") throw invalid(`'${field}' must be a string, not ${typeName(v)}`, field);
    return v;
  };
}

function stopSequences(v: unknown): string[] {
  let list: string[];
  try {
    list = stopStrings(v)!;
  } catch {
    throw invalid("'stop' must be a string or an array of strings", "stop");
  }
  if (list.length > MAX_STOP_SEQUENCES) throw invalid(`'stop' takes at most ${MAX_STOP_SEQUENCES} sequences`, "stop");
  return list;
}

/** A message's content: a string, or OpenAI's content parts of type "text" (joined by newlines, as vLLM joins them). */
function content(v: unknown, field: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v
      .map((part, j) => {
        const p = part as Record<string, unknown> | null;
        if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
          throw invalid(`'${field}[${j}]' must be a text part ({"type": "text", "text": "..."})`, field);
        }
        return p.text;
      })
      .join("\n");
  }
  throw invalid(`'${field}' must be a string or an array of text parts, not ${typeName(v)}`, field);
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v)) throw invalid(`'messages' must be an array of messages, not ${typeName(v)}`, "messages");
  if (v.length === 0) throw invalid("'messages' must hold at least one message", "messages");
  return v.map((m, i) => {
    const field = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw invalid(`'${field}' must be an object, not ${typeName(m)}`, field);
    const { role, content: c } = m as Record<string, unknown>;
    if (typeof role !== "string" || role.trim() === "") throw invalid(`'${field}.role' must be a non-empty string`, `${field}.role`);
    if (c === undefined || c === null) throw invalid(`'${field}.content' is required`, `${field}.content`);
    // OpenAI's newer clients send the system prompt as "developer", a role LLaDA's template renders as is and the
    // model never saw in training.
    return { role: role === "developer" ? "system" : role, content: content(c, `${field}.content`) };
  });
}

/** Decoding parameters shared by both endpoints, with the seed's length rule. */
function decoding(body: Body, defaults: RequestDefaults): RequestOptions {
  const fromMaxTokens = optional(body, "max_tokens", number("max_tokens", 1, defaults.maxSequenceLength, { integer: true }));
  const given =
    fromMaxTokens ?? optional(body, "max_completion_tokens", number("max_completion_tokens", 1, defaults.maxSequenceLength, { integer: true }));
  const maxTokens = given ?? DEFAULT_MAX_TOKENS;
  // The field the length came from (max_tokens by default), which an error about it names.
  const lengthField = fromMaxTokens === undefined && given !== undefined ? "max_completion_tokens" : "max_tokens";
  const requestedBlock = optional(body, "block_length", number("block_length", 1, defaults.maxSequenceLength, { integer: true }));
  // The seed's length rule: the block never exceeds max_tokens, and the generation is whole blocks.
  const blockLength = Math.min(requestedBlock ?? DEFAULT_BLOCK_LENGTH, maxTokens);
  const genLength = Math.ceil(maxTokens / blockLength) * blockLength;
  // Rounded up past the context, the completion alone cannot fit, whatever the prompt: the length is at fault.
  if (genLength > defaults.maxSequenceLength) {
    throw invalid(
      `'${lengthField}' ${maxTokens} in whole blocks of ${blockLength} makes ${genLength} tokens, more than this model's maximum ` +
        `context length of ${defaults.maxSequenceLength} tokens; lower '${lengthField}' or choose a 'block_length' that divides it`,
      lengthField,
    );
  }
  const blocks = genLength / blockLength;
  // Every step commits at least one token until the generation is full, so no useful count exceeds the context.
  let steps = optional(body, "steps", number("steps", 1, defaults.maxSequenceLength, { integer: true }));
  if (steps === undefined) {
    steps = Math.ceil(DEFAULT_STEPS / blocks) * blocks;
  } else if (steps % blocks !== 0) {
    // The nearest multiples the field's own bounds allow.
    throw invalid(
      `'steps' must be a multiple of the number of blocks (${genLength} tokens in blocks of ${blockLength} = ${blocks}); ` +
        `try ${nearestSteps(steps, blocks, defaults.maxSequenceLength).join(" or ")}`,
      "steps",
    );
  }

  const remasking = optional(body, "remasking", string("remasking"));
  if (remasking !== undefined && remasking !== "low_confidence" && remasking !== "random") {
    throw invalid("'remasking' must be 'low_confidence' or 'random'", "remasking");
  }
  const topP = optional(body, "top_p", number("top_p", 0, 1, { exclusiveMin: true }));
  // -1 is vLLM's "every id", as 0 is here (samplerParams takes both).
  const topK = optional(body, "top_k", number("top_k", -1, Number.MAX_SAFE_INTEGER, { integer: true }));

  const algorithmName = optional(body, "generation_algorithm", string("generation_algorithm")) ?? defaults.algorithm;
  const threshold = optional(body, "threshold", number("threshold", 0, 1, { exclusiveMin: true }));
  const factor = optional(body, "factor", number("factor", 0, Number.MAX_VALUE, { exclusiveMin: true }));
  const lowThreshold = optional(body, "low_threshold", number("low_threshold", 0, 1, { exclusiveMin: true }));
  try {
    resolveAlgorithm(algorithmName, { threshold, factor, lowThreshold });
  } catch (err) {
    if (!(err instanceof AlgorithmError)) throw err;
    if (err.field === "algorithm") throw invalid(`generation_${err.message}`, "generation_algorithm", "unknown_algorithm");
    throw invalid(`${err.message} (generation_algorithm '${algorithmName}')`, err.field);
  }

  return {
    genLength,
    blockLength,
    steps,
    temperature: optional(body, "temperature", number("temperature", 0, 2)),
    topK,
    topP,
    cfgScale: optional(body, "cfg_scale", number("cfg_scale", 0, 100)),
    remasking: remasking as RequestOptions["remasking"],
    logitsEosInf: optional(body, "logits_eos_inf", boolean("logits_eos_inf")),
    confidenceEosEotInf: optional(body, "confidence_eos_eot_inf", boolean("confidence_eos_eot_inf")),
    algorithm: algorithmName,
    threshold,
    factor,
    lowThreshold,
    earlyStop: optional(body, "early_stop", boolean("early_stop")),
    seed: optional(body, "seed", number("seed", 0, SEEDS - 1, { integer: true })),
    stop: optional(body, "stop", stopSequences),
  };
}

const isEmptyObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

/**
 * OpenAI features this server does not have, with the values that ask for nothing (what clients send by
 * default). Anything else is refused: an answer without them is not what was asked for, and an evaluation that
 * silently got no log-probabilities would be scored wrong.
 */
const UNSUPPORTED: ReadonlyArray<[field: string, asksNothing: (v: unknown) => boolean, why: string]> = [
  ["logprobs", (v) => v === false, "masked diffusion gives no left-to-right token probabilities"],
  ["top_logprobs", (v) => v === 0, "masked diffusion gives no left-to-right token probabilities"],
  ["echo", (v) => v === false, "only the generated text is returned"],
  ["best_of", (v) => v === 1, "ranking candidates needs their probabilities; use n and pick"],
  ["suffix", (v) => v === "", "there is no insertion mode"],
  ["logit_bias", isEmptyObject, "the sampler has no per-token bias"],
  ["frequency_penalty", (v) => v === 0, "the sampler has no repetition penalties"],
  ["presence_penalty", (v) => v === 0, "the sampler has no repetition penalties"],
  ["tools", (v) => Array.isArray(v) && v.length === 0, "there is no tool calling"],
  ["functions", (v) => Array.isArray(v) && v.length === 0, "there is no tool calling"],
  ["response_format", (v) => isEmptyObject(v) || (v as { type?: unknown })?.type === "text", "there is no constrained decoding"],
];

function refuseUnsupported(body: Body): void {
  for (const [field, asksNothing, why] of UNSUPPORTED) {
    const v = body[field];
    if (v !== undefined && v !== null && !asksNothing(v))
      throw invalid(`'${field}' is not supported by this server (${why}); leave it out`, field, "unsupported_parameter");
  }
}

function asBody(v: unknown): Body {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(`the request body must be a JSON object, not ${typeName(v)}`);
  return v as Body;
}

/** stream, and stream_options (only with stream, as OpenAI has it). */
function streaming(body: Body): { stream: boolean; includeUsage: boolean } {
  const stream = optional(body, "stream", boolean("stream")) ?? false;
  const options = body.stream_options;
  if (options === undefined || options === null) return { stream, includeUsage: false };
  if (typeof options !== "object" || Array.isArray(options)) throw invalid("'stream_options' must be an object", "stream_options");
  if (!stream) throw invalid("'stream_options' is only allowed when 'stream' is true", "stream_options");
  return { stream, includeUsage: optional(options as Body, "include_usage", boolean("stream_options.include_usage")) ?? false };
}

/** n, checked against the number of prompts it multiplies, and against the queue the choices must fit together. */
function choicesPerPrompt(body: Body, prompts: number, maxQueue: number | undefined): number {
  const n = optional(body, "n", number("n", 1, MAX_CHOICES, { integer: true })) ?? 1;
  if (n * prompts > MAX_CHOICES)
    throw invalid(`${prompts} prompts × n = ${n} make ${n * prompts} choices; at most ${MAX_CHOICES} per request`, "n");
  // Refused with a 429 it would be for ever, even by an idle server: it can never be served.
  if (maxQueue !== undefined && n * prompts > maxQueue) {
    const asked = prompts === 1 ? `n = ${n} choices` : `${prompts} prompts × n = ${n} make ${n * prompts} choices`;
    throw invalid(`${asked}; this server queues at most ${maxQueue} requests (--max-queue), so at most ${maxQueue} choices per request`, n === 1 ? "prompt" : "n");
  }
  return n;
}

export function parseChatRequest(raw: unknown, defaults: RequestDefaults): ParsedRequest {
  const body = asBody(raw);
  if (body.messages === undefined) throw invalid("'messages' is required", "messages");
  const list = messages(body.messages);
  refuseUnsupported(body);
  const input: GenerationInput = defaults.chatTemplate
    ? { messages: list }
    : { prompt: list.map((m) => m.content).join("\n") };
  optional(body, "model", string("model")); // any name is accepted: one model is served
  return { inputs: [input], n: choicesPerPrompt(body, 1, defaults.maxQueue), options: decoding(body, defaults), ...streaming(body) };
}

const isTokenId = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** OpenAI's four forms of `prompt`: a string, a list of strings, token ids, or a list of token-id lists. */
function completionPrompts(prompt: unknown): Array<string | number[]> {
  const form = "a string, a list of strings, a list of token ids or a list of such lists";
  if (typeof prompt === "string") return [prompt];
  if (!Array.isArray(prompt)) throw invalid(`'prompt' must be ${form}, not ${typeName(prompt)}`, "prompt");
  if (prompt.length === 0) throw invalid("'prompt' must not be an empty list", "prompt");
  if (prompt.every(isTokenId)) return [prompt as number[]];
  if (prompt.length > MAX_CHOICES) throw invalid(`'prompt' holds ${prompt.length} prompts; at most ${MAX_CHOICES} per request`, "prompt");
  prompt.forEach((p, i) => {
    const ok = typeof p === "string" || (Array.isArray(p) && p.length > 0 && p.every(isTokenId));
    if (!ok) throw invalid(`'prompt[${i}]' must be a string or a non-empty list of token ids, not ${typeName(p)}`, "prompt");
  });
  return prompt as Array<string | number[]>;
}

export function parseCompletionRequest(raw: unknown, defaults: RequestDefaults): ParsedRequest {
  const body = asBody(raw);
  refuseUnsupported(body);
  const prompts = completionPrompts(body.prompt);
  optional(body, "model", string("model"));
  return {
    inputs: prompts.map((p) => ({ prompt: p })),
    n: choicesPerPrompt(body, prompts.length, defaults.maxQueue),
    options: decoding(body, defaults),
    ...streaming(body),
  };
}
