// An independent checker of the synthetic tasks: it reads the payload back out of the prompt text by matching the
// phrasings, and computes the expected answer its own way (not with the generator's code).
import { TEMPLATES, type TaskKind } from "./tasks.js";

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const PATTERNS: Array<[TaskKind, RegExp]> = (Object.keys(TEMPLATES) as TaskKind[]).flatMap((kind) =>
  TEMPLATES[kind].map((t): [TaskKind, RegExp] => {
    const [before, after] = t.split("{x}").map(escape);
    const payload = kind === "sort" ? "([0-9](?:(?:, | )?[0-9])*)" : "([a-z]+)";
    return [kind, new RegExp(`^${before}${payload}${after}$`)];
  }),
);

/** The answer the prompt asks for, or undefined when it matches no phrasing. */
export function solve(prompt: string): { kind: TaskKind; answer: string } | undefined {
  for (const [kind, re] of PATTERNS) {
    const m = re.exec(prompt);
    if (!m) continue;
    const x = m[1];
    if (kind === "reverse") return { kind, answer: Array.from(x).reverse().join("") };
    if (kind === "count") return { kind, answer: `${x.length}` };
    // Counting sort over the digit characters.
    const counts = new Array<number>(10).fill(0);
    for (const c of x) if (c >= "0" && c <= "9") counts[c.charCodeAt(0) - 48]++;
    return { kind, answer: counts.map((n, d) => String(d).repeat(n)).join("") };
  }
  return undefined;
}

/** Whether `answer` is the exact right answer to `prompt`. */
export function check(prompt: string, answer: string): boolean {
  const s = solve(prompt);
  return s !== undefined && s.answer === answer;
}
