// The model's tokenizer (tokenizer.json via @huggingface/tokenizers) and chat template (tokenizer_config.json).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { InvalidRequestError } from "../engine/errors.js";
import { ChatTemplate, type ChatMessage } from "./chat-template.js";

type TokenField = string | { content: string } | null | undefined;

function tokenText(field: TokenField): string | undefined {
  if (typeof field === "string") return field;
  return field?.content;
}

async function readJson(file: string, required: boolean): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

// LLaDA's end-of-turn token; the tokenizer may not have one (then only EOS ends a text).
const EOT_TOKEN = "<|eot_id|>";

export class LLaDATokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #template: ChatTemplate | null;
  /** `<|eot_id|>`'s id, if the vocabulary has it. */
  readonly eotTokenId: number | undefined;
  /** The special tokens' ids by their text (decoded text never holds them). */
  readonly #specials = new Map<string, number>();

  private constructor(tokenizer: Tokenizer, template: ChatTemplate | null) {
    this.#tokenizer = tokenizer;
    this.#template = template;
    this.eotTokenId = tokenizer.token_to_id(EOT_TOKEN);
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) if (token.special) this.#specials.set(token.content, id);
  }

  /** The id of the special token whose text this is, if it is one. */
  specialTokenId(text: string): number | undefined {
    return this.#specials.get(text);
  }

  static async load(modelPath: string): Promise<LLaDATokenizer> {
    const json = await readJson(path.join(modelPath, "tokenizer.json"), true);
    const config = await readJson(path.join(modelPath, "tokenizer_config.json"), false);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, config);
    } catch (err) {
      throw new Error(`${path.join(modelPath, "tokenizer.json")}: cannot build the tokenizer (${(err as Error).message})`);
    }
    const source = config.chat_template;
    let template: ChatTemplate | null = null;
    if (typeof source === "string") {
      const specials: Record<string, string> = {};
      for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
        const text = tokenText(config[key] as TokenField);
        if (text !== undefined) specials[key] = text;
      }
      template = new ChatTemplate(source, specials);
    }
    return new LLaDATokenizer(tokenizer, template);
  }

  /** Token ids of `text`; special-token strings in it become their ids, nothing is added. */
  encode(text: string): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Text of `ids`, without special tokens. Never with clean_up_tokenization_spaces (the library's default when
   * tokenizer_config.json does not say; LLaDA's says false): it rewrites " ." to "." and so on, so the text of
   * more tokens would not always begin with the text of fewer, and streamed text could not be taken back.
   */
  decode(ids: ArrayLike<number>): string {
    if (ids.length === 0) return ""; // the library throws on an empty list
    return this.#tokenizer.decode(Array.from(ids), { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  /**
   * The chat-formatted prompt for `messages` (ends with the assistant header). A model without a template, or
   * messages its template refuses (say, roles out of the order it demands), are the request's problem.
   */
  applyChatTemplate(messages: ChatMessage[]): string {
    if (!this.#template) {
      throw new InvalidRequestError(
        "this model's tokenizer_config.json has no chat_template: send a raw prompt (/v1/completions) instead",
        "messages",
      );
    }
    try {
      return this.#template.render(messages);
    } catch (err) {
      throw new InvalidRequestError(`the model's chat template refused these messages: ${(err as Error).message}`, "messages");
    }
  }

  /** The token ids of the chat-formatted prompt for `messages` (applyChatTemplate, encoded). */
  chatIds(messages: ChatMessage[]): number[] {
    return this.encode(this.applyChatTemplate(messages));
  }
}
