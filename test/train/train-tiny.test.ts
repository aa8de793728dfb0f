// npm run train:tiny --resume: an interrupted run, resumed, ends where an uninterrupted one does, with the same
// weights and the same logged losses (trainer.test.ts checks the trainer's own resume; this checks the command's
// log, whose loss EMA lives outside the trainer). A few steps on small batches: seconds.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, "../../dist/train/train-tiny.js");
const dir = tempDir("dllm-train-tiny-");

// Warmup longer than the run: the learning rate of a step then does not depend on --steps, so a 50-step run
// resumed to 100 steps is the first half of a 100-step run.
const OPTIONS = ["--batch", "4", "--warmup", "1000", "--eval-every", "0", "--final-eval-count", "1", "--checkpoint-every", "50"];

async function train(name: string, steps: number, resume = false): Promise<void> {
  const args = [cli, ...OPTIONS, "--steps", String(steps), "--work", path.join(dir, `${name}-work`), "--out", path.join(dir, `${name}-out`)];
  await run(process.execPath, resume ? [...args, "--resume"] : args);
}

const outFile = (name: string, file: string) => readFileSync(path.join(dir, `${name}-out`, file));

describe("npm run train:tiny --resume", () => {
  it("continues an interrupted run bit-exactly, logged losses included", async () => {
    await train("whole", 100);
    await train("parts", 50);
    await train("parts", 100, true);
    const losses = (name: string) => JSON.parse(outFile(name, "train-log.json").toString("utf8")).losses;
    // The command logs its loss every 50 steps (train-tiny.ts; the interval is not exported): at steps 50 and 100.
    expect(losses("whole").map(([step]: [number, number]) => step)).toEqual([50, 100]);
    expect(losses("parts")).toEqual(losses("whole"));
    expect(outFile("parts", "model.safetensors").equals(outFile("whole", "model.safetensors"))).toBe(true);
  });
});

describe("npm run train:tiny's flags", () => {
  it("refuses a bad value in one line naming the flag, without a stack, before anything is written or trains", async () => {
    const work = path.join(dir, "refused");
    for (const [args, message] of [
      [["--eval-count", "0"], "--eval-count must be an integer >= 1, got '0'"],
      [["--lr", "x"], "--lr must be a positive number, got 'x'"],
      [["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"],
      [["--resume"], `--resume: no checkpoint in ${path.join(work, "checkpoint")}`],
    ] as Array<[string[], string]>) {
      const failed = await run(process.execPath, [cli, ...args, "--work", work]).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr.trim()).toBe(`error: ${message}`);
      expect(existsSync(work), `${args.join(" ")} wrote into --work`).toBe(false);
    }
  });
});
