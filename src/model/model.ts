// The in-process API over one engine: load a LLaDA folder, generate from chat messages or a raw prompt, dispose.
import type { ModelInfo } from "../native/addon-types.js";
import { Engine, type CacheMode, type DecoderKind, type LoadOptions, type Remasking } from "../engine/engine.js";
import { DisposedError, InvalidRequestError } from "../engine/errors.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { LLaDATokenizer } from "../tokenizer/tokenizer.js";
import { AlgorithmError, DEFAULT_ALGORITHM, DEFAULT_BLOCK_LENGTH, resolveAlgorithm } from "./algorithms.js";
import { AnswerText } from "./answer-text.js";
import { randomSeed } from "./seeds.js";

/** Chat messages (the model's chat template applies), or a raw prompt: text, or token ids as they are. */
export type GenerationInput = { messages: ChatMessage[]; prompt?: never } | { prompt: string | number[]; messages?: never };

export interface GenerationParams {
  /** Tokens to generate (LLaDA's gen_length). Default 128. */
  genLength?: number;
  /** Semi-autoregressive block size; divides genLength. Default min(32, genLength). */
  blockLength?: number;
  /** Denoising steps over the whole generation; a multiple of genLength / blockLength. Default genLength. */
  steps?: number;
  temperature?: number;
  /**
   * At temperature > 0, sample among the topK most likely ids only (default 0: all), then among the most likely
   * of those that hold topP of the probability (default 1: all), as Hugging Face's samplers truncate.
   */
  topK?: number;
  topP?: number;
  cfgScale?: number;
  remasking?: Remasking;
  logitsEosInf?: boolean;
  confidenceEosEotInf?: boolean;
  /** A name or alias from src/model/algorithms.ts. Default basic. */
  algorithm?: string;
  /** Parallel decoding: also commit every masked position of the block more confident than this. */
  threshold?: number;
  /** Parallel decoding by Fast-dLLM's factor rule. */
  factor?: number;
  /** dinfer_hierarchy: the bar for the most confident token of a run of masks. */
  lowThreshold?: number;
  /** Cached algorithms: also refresh the cache every this many steps inside a block (0: at block starts only). */
  refreshEvery?: number;
  /**
   * dInfer's early stop, for every algorithm (default true): once a finished block holds a row's first EOS / eot,
   * the row leaves the batch and the rest of its tokens are EOS. Later blocks could only add tokens after the
   * answer's end, so the answer (text, tokens, usage, finish reason) is the same; only forward passes are saved.
   * false decodes every block, as LLaDA's and Fast-dLLM's samplers do (for benchmarks of fixed work).
   */
  earlyStop?: boolean;
}

export interface BlockEvent {
  block: number;
  /** The block's committed tokens. */
  tokens: Int32Array;
  /** New text since the previous event (text ends at the first EOS / eot). */
  delta: string;
  /** A stop token or stop string has ended the answer: later blocks add no text (under early stop, the row leaves). */
  stopped: boolean;
}

export interface GenerateOptions extends GenerationParams {
  /** Integer in [0, 2^53); a random one when absent. */
  seed?: number;
  /** Strings that end the answer (not included in it). */
  stop?: string | string[];
  signal?: AbortSignal;
  onBlock?: (event: BlockEvent) => void;
}

export interface Usage {
  promptTokens: number;
  /** Tokens of the answer, up to (not including) the first EOS / eot; the EOS padding after it is not counted. */
  completionTokens: number;
  totalTokens: number;
}

export interface Generation {
  text: string;
  /** The answer's tokens (up to the stop token). */
  tokens: number[];
  finishReason: "stop" | "length";
  usage: Usage;
  seed: number;
  /**
   * Forward passes the batch that produced this took while the row was in it: all of them, or under early stop,
   * those until the block that ended the answer (after which the row left the batch).
   */
  forwards: number;
}

/** The forward passes a batch ran: those of its row that stayed longest (under early stop rows leave early). */
export function batchForwards(generations: readonly { forwards: number }[]): number {
  return Math.max(...generations.map((g) => g.forwards));
}

export interface BatchOptions {
  signal?: AbortSignal;
  onBlock?: (row: number, event: BlockEvent) => void;
  /**
   * Rows the caller no longer needs (say, cancelled ones), asked after each block: under early stop they leave
   * the batch as finished rows do, and their generations hold what was decoded until then.
   */
  released?: (row: number) => boolean;
  /**
   * Under early stop: each row's Generation as soon as its answer is complete (a stop token or string), at the end
   * of that block, when the row leaves the batch, rather than when the whole batch ends. The batch's result holds
   * the same Generation.
   */
  onFinished?: (row: number, generation: Generation) => void;
}

export interface DecodeRow {
  promptIds: number[];
  seed: number;
  /** Strings that end the answer (not included in it). */
  stop?: string[];
}

/** Every sampler parameter with its default filled in: requests with equal ResolvedParams can share a batch. */
export type ResolvedParams = Required<GenerationParams> & { cache: CacheMode; decoder: DecoderKind };

/** Each parameter's type; integer ones are whole numbers (the engine checks every value's range). */
const PARAM_TYPES: { [K in keyof Required<GenerationParams>]: "integer" | "number" | "boolean" | "string" } = {
  genLength: "integer", blockLength: "integer", steps: "integer", temperature: "number", topK: "integer", topP: "number",
  cfgScale: "number", remasking: "string", logitsEosInf: "boolean", confidenceEosEotInf: "boolean", algorithm: "string",
  threshold: "number", factor: "number", lowThreshold: "number", refreshEvery: "integer", earlyStop: "boolean",
};

/** Refuses a parameter this API does not know (gen_length for genLength) or of the wrong type ("32", NaN). */
function checkParamTypes(p: GenerationParams): void {
  for (const [key, value] of Object.entries(p)) {
    const type = PARAM_TYPES[key as keyof GenerationParams];
    if (type === undefined) throw new InvalidRequestError(`unknown parameter '${key}' (the parameters: ${Object.keys(PARAM_TYPES).join(", ")})`, key);
    if (value === undefined) continue;
    const ok =
      type === "integer" ? Number.isSafeInteger(value) : type === "number" ? typeof value === "number" && Number.isFinite(value) : typeof value === type;
    if (!ok) throw new InvalidRequestError(`${key} must be ${type === "integer" ? "an integer" : `a ${type === "number" ? "finite number" : type}`}, got ${JSON.stringify(value) ?? String(value)}`, key);
  }
}

/** A call's stop strings: a string is one, as OpenAI takes it. */
export function stopStrings(stop: unknown): string[] | undefined {
  if (stop === undefined) return undefined;
  const list = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) throw new InvalidRequestError("stop must be a string or an array of strings", "stop");
  return list;
}

/**
 * Fills in the defaults; throws InvalidRequestError for a parameter it does not know or of the wrong type, and for an
 * algorithm choice that cannot be honoured.
 */
export function samplerParams(p: GenerationParams): ResolvedParams {
  checkParamTypes(p);
  const genLength = p.genLength ?? 128;
  let algorithm;
  try {
    algorithm = resolveAlgorithm(p.algorithm ?? DEFAULT_ALGORITHM, { threshold: p.threshold, factor: p.factor, lowThreshold: p.lowThreshold });
  } catch (err) {
    if (err instanceof AlgorithmError) throw new InvalidRequestError(err.message, err.field);
    throw err;
  }
  // Checked here too, as they are dropped at temperature 0 before the engine could; -1 is vLLM's "all", as 0.
  const topK = p.topK ?? 0, topP = p.topP ?? 1;
  if (topK < -1) throw new InvalidRequestError(`topK must be an integer >= -1 (0 or -1: every id), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new InvalidRequestError(`topP must be in (0, 1], got ${topP}`);
  const blockLength = p.blockLength ?? Math.min(DEFAULT_BLOCK_LENGTH, genLength);
  if (p.blockLength === undefined && Number.isSafeInteger(genLength) && genLength > 0 && genLength % blockLength !== 0) {
    // The engine would refuse a block length the caller never gave: say which one, and what to do.
    throw new InvalidRequestError(`genLength ${genLength} is not a multiple of the default blockLength ${blockLength}: give a blockLength that divides it`);
  }
  return {
    ...algorithm,
    refreshEvery: p.refreshEvery ?? 0,
    earlyStop: p.earlyStop ?? true,
    genLength,
    blockLength,
    steps: p.steps ?? genLength,
    temperature: p.temperature ?? 0,
    // Truncation changes nothing at temperature 0: requests that differ only there can share a batch.
    topK: (p.temperature ?? 0) > 0 ? Math.max(0, topK) : 0,
    topP: (p.temperature ?? 0) > 0 ? topP : 1,
    cfgScale: p.cfgScale ?? 0,
    remasking: p.remasking ?? "low_confidence",
    logitsEosInf: p.logitsEosInf ?? false,
    confidenceEosEotInf: p.confidenceEosEotInf ?? false,
  };
}

export interface LoadModelOptions extends LoadOptions {
  modelPath: string;
}


export class Model {
  readonly #engine: Engine;
  readonly tokenizer: LLaDATokenizer;
  readonly #stopIds: Set<number>;

  private constructor(engine: Engine, tokenizer: LLaDATokenizer) {
    this.#engine = engine;
    this.tokenizer = tokenizer;
    this.#stopIds = new Set([engine.info.eosTokenId]);
    if (tokenizer.eotTokenId !== undefined) this.#stopIds.add(tokenizer.eotTokenId);
  }

  static async load(options: LoadModelOptions): Promise<Model> {
    const tokenizer = await LLaDATokenizer.load(options.modelPath);
    const engine = await Engine.load(options.modelPath, options);
    return new Model(engine, tokenizer);
  }

  get info(): ModelInfo {
    return this.#engine.info;
  }

  get engine(): Engine {
    return this.#engine;
  }

  /** The decoding forward passes run so far, cancelled and failed generations' included (Engine.forwardPasses). */
  get forwardPasses(): number {
    return this.#engine.forwardPasses;
  }

  /** The decoding steps set up for shapes not met before (Engine.stepsSetUp). */
  get stepsSetUp(): number {
    return this.#engine.stepsSetUp;
  }

  /** The prompt token ids for an input (chat template applied to messages). */
  promptIds(input: GenerationInput): number[] {
    let ids: number[];
    if (input.messages !== undefined) {
      validateMessages(input.messages);
      ids = this.tokenizer.chatIds(input.messages);
    } else if (typeof input.prompt === "string") {
      ids = this.tokenizer.encode(input.prompt);
    } else if (Array.isArray(input.prompt)) {
      // Token ids as they are. Checked here, not only by the engine: they travel as int32, where 2^32 + 5 is 5.
      const vocabulary = this.info.embeddingSize;
      if (input.prompt.length === 0 || !input.prompt.every((t) => Number.isInteger(t) && t >= 0 && t < vocabulary)) {
        throw new InvalidRequestError(`a token-id prompt must be a non-empty list of integers in [0, ${vocabulary}), the vocabulary`, "prompt");
      }
      ids = [...input.prompt];
    } else {
      throw new InvalidRequestError("give either messages or a prompt (text or token ids)");
    }
    if (ids.includes(this.info.maskTokenId)) {
      throw new InvalidRequestError("the prompt contains the mask token", input.messages !== undefined ? "messages" : "prompt");
    }
    return ids;
  }

  /** Answers one input. */
  async generate(input: GenerationInput, options: GenerateOptions = {}): Promise<Generation> {
    const { seed, stop, onBlock, ...rest } = options;
    const [out] = await this.generateBatch([{ ...input, seed, stop }], { ...rest, onBlock: onBlock && ((_row, event) => onBlock(event)) });
    return out;
  }

  /**
   * Answers several inputs in one batch (left-padded together); each has its own seed and gets the same
   * tokens as it would alone. onBlock reports rows in input order through `row`.
   */
  async generateBatch(
    inputs: Array<GenerationInput & { seed?: number; stop?: string | string[] }>,
    options: BatchOptions & GenerationParams = {},
  ): Promise<Generation[]> {
    const rows = inputs.map((input) => ({ promptIds: this.promptIds(input), seed: input.seed ?? randomSeed(), stop: stopStrings(input.stop) }));
    const { signal, onBlock, released, onFinished, ...params } = options;
    return this.decode(rows, samplerParams(params), { signal, onBlock, released, onFinished });
  }

  /** Throws the InvalidRequestError that decoding this row with these parameters would fail with. */
  check(row: DecodeRow, params: ResolvedParams): void {
    this.#engine.check([{ prompt: row.promptIds, seed: row.seed }], { ...params, eotTokenId: this.tokenizer.eotTokenId });
  }

  /** Decodes prompts that are already token ids (see promptIds) with fully resolved parameters. */
  async decode(rows: DecodeRow[], params: ResolvedParams, options: BatchOptions = {}): Promise<Generation[]> {
    if (this.#engine.disposed) throw new DisposedError("model");
    if (rows.length === 0) return [];
    const answers = rows.map((r) => new AnswerText(this.tokenizer, this.#stopIds, r.stop));
    const blocks = params.genLength / params.blockLength;
    const { onBlock, onFinished } = options;
    // Text is assembled block by block when someone streams it or wants answers as they end, or when a stop string
    // or the caller may end a row before its EOS: under early stop such a row then leaves the batch. Otherwise the
    // text is assembled once at the end.
    const letsGo = params.earlyStop && (options.released !== undefined || rows.some((r) => r.stop?.length));
    const perBlock = onBlock !== undefined || onFinished !== undefined || letsGo;
    // Answers handed out as their rows left the batch: the batch's result reuses them.
    const handedOut: (Generation | undefined)[] = rows.map(() => undefined);
    const generation = (row: number, forwards: number): Generation => {
      const answer = answers[row].finish();
      const promptTokens = rows[row].promptIds.length;
      return {
        ...answer,
        usage: { promptTokens, completionTokens: answer.tokens.length, totalTokens: promptTokens + answer.tokens.length },
        seed: rows[row].seed,
        forwards,
      };
    };
    const result = await this.#engine.generate(
      rows.map((r) => ({ prompt: r.promptIds, seed: r.seed })),
      { ...params, eotTokenId: this.tokenizer.eotTokenId },
      {
        signal: options.signal,
        // Rows this batch may let go leave at the end of the block that ended them: the engine waits for each
        // block's verdict (a tokenizer pass over one block) before decoding the next.
        awaitRows: letsGo,
        onBlock: perBlock
          ? (block, tokenRows, forwards) => {
              const done: number[] = [];
              tokenRows.forEach((tokens, row) => {
                const event = { block, tokens, ...answers[row].push(tokens, block === blocks - 1) };
                if (event.stopped || options.released?.(row)) done.push(row);
                onBlock?.(row, event);
                // Under early stop the row leaves the batch after this block: the passes so far are all it takes
                // (the engine's rowForwards says the same at the end).
                if (event.stopped && params.earlyStop && onFinished && !handedOut[row]) {
                  handedOut[row] = generation(row, forwards);
                  onFinished(row, handedOut[row]);
                }
              });
              return params.earlyStop ? done : undefined;
            }
          : undefined,
      },
    );
    return result.tokens.map((tokens, row) => {
      if (!perBlock) answers[row].push(tokens, true);
      return handedOut[row] ?? generation(row, result.rowForwards[row]);
    });
  }

  dispose(): Promise<void> {
    return this.#engine.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidRequestError("messages must be a non-empty array");
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null) throw new InvalidRequestError(`messages[${i}] must be an object`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== "string" || role === "") throw new InvalidRequestError(`messages[${i}].role must be a non-empty string`);
    if (typeof content !== "string") throw new InvalidRequestError(`messages[${i}].content must be a string`);
  });
}
