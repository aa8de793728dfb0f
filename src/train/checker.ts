// An independent checker of the synthetic tasks: it reads the payload back out of the prompt text by matching the
// phrasings, and computes the expected answer its own way (not with the generator's code).
import { TEMPLATES, type TaskKind } from "./tasks.js";

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const PATTERNS: Array<[TaskKind, RegExp]> = (Object.keys(TEMPLATES) as TaskKind[]).flatMap((kind) =>
  TEMPLATES[kind].map((t): [TaskKind, RegExp] => {
    const [before, after] = t.split("{x}").map(escape);
    return [kind, new RegExp(`^${before}([a-z]+)${after}$`)];
  }),
);

/** The answer the prompt asks for, or undefined when it matches no phrasing. */
export function solve(prompt: string): { kind: TaskKind; answer: string } | undefined {
  for (const [kind, re] of PATTERNS) {
    const m = re.exec(prompt);
    if (!m) continue;
    const x = m[1];
    if (kind === "reverse") return { kind, answer: x.split("").reverse().join("") };
    if (kind === "count") return { kind, answer: `${x.length}` };
    return { kind, answer: x.charAt(0) };
  }
  return undefined;
}

/** Whether `answer` is the exact right answer to `prompt`. */
export function check(prompt: string, answer: string): boolean {
  const s = solve(prompt);
  return s !== undefined && s.answer === answer;
}
