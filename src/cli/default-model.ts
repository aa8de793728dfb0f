// The model served when none is named: the tiny chat model trained by `npm run train:tiny` and bundled with the
// project (bundled/llada-tiny-chat).
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const defaultModelPath = path.join(projectRoot, "bundled", "llada-tiny-chat");

/** The bundled model's folder; a clear error (naming the way to rebuild it) when it is missing. */
export function defaultModel(): string {
  if (!existsSync(path.join(defaultModelPath, "config.json")))
    throw new Error(`the bundled model is missing from ${defaultModelPath}: restore it from git, rebuild it with ` +
      "`npm run train:tiny`, or name a model with --model-path");
  return defaultModelPath;
}
