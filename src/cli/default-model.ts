// The model used when none is named: until a trained model is bundled, a tiny random LLaDA checkpoint written
// (once, deterministically) into models/tiny-random.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeTinyLLaDA } from "../fixtures/tiny-llada.js";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const defaultModelPath = path.join(projectRoot, "models", "tiny-random");

export async function ensureDefaultModel(): Promise<string> {
  if (!existsSync(path.join(defaultModelPath, "config.json"))) await writeTinyLLaDA(defaultModelPath);
  return defaultModelPath;
}
