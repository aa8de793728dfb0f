// Held-out evaluation of a trained tiny chat model through the real serving path: Model.load, then generateBatch
// with the reference sampler, one batch per task kind (mixed prompt lengths, left-padded together).
import { Model, type GenerationParams } from "../model/model.js";
import { check } from "./checker.js";
import { heldOutSet, TASK_KINDS, type TaskKind } from "./tasks.js";

export const EVAL_SAMPLER: GenerationParams = { genLength: 8, blockLength: 8, steps: 8, temperature: 0 };

export interface KindResult {
  correct: number;
  total: number;
  accuracy: number;
}

export interface EvalResult {
  perKind: Record<TaskKind, KindResult>;
  /** Wrong answers (a few per kind) for inspection. */
  mistakes: Array<{ kind: TaskKind; prompt: string; expected: string; got: string }>;
}

export async function evaluate(modelDir: string, perKind: number, options: { device?: string } = {}): Promise<EvalResult> {
  const model = await Model.load({ modelPath: modelDir, device: options.device ?? "cpu" });
  try {
    const result: EvalResult = { perKind: {} as EvalResult["perKind"], mistakes: [] };
    for (const kind of TASK_KINDS) {
      const set = heldOutSet(kind, perKind);
      const out = await model.generateBatch(
        set.map((e, i) => ({ messages: [{ role: "user", content: e.prompt }], seed: i })),
        EVAL_SAMPLER,
      );
      let correct = 0;
      out.forEach((g, i) => {
        if (check(set[i].prompt, g.text)) correct++;
        else if (result.mistakes.filter((m) => m.kind === kind).length < 5)
          result.mistakes.push({ kind, prompt: set[i].prompt, expected: set[i].answer, got: g.text });
      });
      result.perKind[kind] = { correct, total: set.length, accuracy: correct / set.length };
    }
    return result;
  } finally {
    await model.dispose();
  }
}
