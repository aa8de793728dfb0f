// The tiny chat model's tokenizer, built by the project (src/train/tiny-chat.ts), is not ours alone: Python's
// `tokenizers` (Hugging Face's reference implementation, installed with pip into models/python-tokenizers on first
// use) loads its tokenizer.json and encodes every task prompt, chat template and special tokens included, to the
// very ids @huggingface/tokenizers gives, and decodes them back.
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { metadataFiles } from "../../src/fixtures/hf-files.js";
import { LLaDATokenizer } from "../../src/tokenizer/tokenizer.js";
import { example, heldOutSet, TASK_KINDS } from "../../src/train/tasks.js";
import { tinyChatFiles } from "../../src/train/tiny-chat.js";
import { tempDir } from "../helpers/temp-dir.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const site = path.join(root, "models", "python-tokenizers");
const python = process.env.PYTHON ?? "python3";

const SCRIPT = `
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
texts = json.load(sys.stdin)
ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
print(json.dumps({"ids": ids, "decoded": [tok.decode(i, skip_special_tokens=True) for i in ids]}))
`;

describe("the tiny chat tokenizer in Python's tokenizers", () => {
  const modelDir = tempDir("dllm-tok-py-");

  beforeAll(() => {
    const { tokenizer, config } = tinyChatFiles();
    for (const [name, text] of metadataFiles(config, tokenizer)) writeFileSync(path.join(modelDir, name), text);
    if (!existsSync(path.join(site, "tokenizers"))) {
      // --no-deps: huggingface_hub, which tokenizers only needs for downloads, is not in every index.
      const pip = ["-m", "pip", "install", "--quiet", "--retries", "0", "--timeout", "5", "--disable-pip-version-check", "--no-deps"];
      execFileSync(python, [...pip, "--target", site, "tokenizers"], {
        stdio: "inherit",
        timeout: 300_000,
      });
    }
  }, 310_000);

  it("encodes chat-templated task prompts and answers to the same ids and decodes them back", async () => {
    const ours = await LLaDATokenizer.load(modelDir);
    const examples = [...Array.from({ length: 60 }, (_, i) => example(2, i, "train")), ...TASK_KINDS.flatMap((k) => heldOutSet(k, 20))];
    const texts = examples.flatMap((e) => [ours.applyChatTemplate([{ role: "user", content: e.prompt }]), e.answer]);
    const out = JSON.parse(
      execFileSync(python, ["-c", SCRIPT, path.join(modelDir, "tokenizer.json")], {
        input: JSON.stringify(texts),
        env: { ...process.env, PYTHONPATH: site },
        encoding: "utf8",
      }),
    ) as { ids: number[][]; decoded: string[] };
    texts.forEach((text, i) => {
      expect(out.ids[i]).toEqual(ours.encode(text));
      expect(out.decoded[i]).toBe(ours.decode(out.ids[i]));
    });
    // The template's special tokens are single ids in both.
    expect(out.ids[0].filter((id) => id >= 256).length).toBeGreaterThanOrEqual(4);
  });
});
