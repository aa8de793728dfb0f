// Command-line option values shared by the project's CLIs (the server, generate, train:tiny, the fixture writer):
// each refuses a bad value naming its flag, before anything slow (a model load) starts.

/** A bad command-line value: what a CLI prints as its message alone, without a stack. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Whether `err` is about the command line (a bad value, or one node:util's parseArgs refused). */
export function isUsageError(err: unknown): boolean {
  return err instanceof UsageError || String((err as { code?: unknown })?.code ?? "").startsWith("ERR_PARSE_ARGS");
}

/**
 * An integer >= min given as `--name` (digits only: no sign, exponent, hex or empty value, which Number() would
 * take), or undefined when it is absent.
 */
export function integer(name: string, text: string | undefined, min = 0): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${text}'`);
  return n;
}

/** `text` as a number: NaN for an empty value (Number("") is 0). */
function toNumber(text: string): number {
  return text.trim() === "" ? NaN : Number(text);
}

/** A finite number given as `--name` (above `above`, at least `atLeast`, when given), or undefined when it is absent. */
export function number(
  name: string,
  text: string | undefined,
  { above, atLeast }: { above?: number; atLeast?: number } = {},
): number | undefined {
  if (text === undefined) return undefined;
  const n = toNumber(text);
  if (!Number.isFinite(n) || (above !== undefined && !(n > above)) || (atLeast !== undefined && !(n >= atLeast))) {
    const what = above === 0 ? "positive number" : above !== undefined ? `number > ${above}` : atLeast !== undefined ? `number >= ${atLeast}` : "number";
    throw new UsageError(`--${name} must be a ${what}, got '${text}'`);
  }
  return n;
}

/**
 * A duration in seconds given as `--name` (> 0 when `positive`, else >= 0), or undefined when it is absent; at most
 * `most` (say, the longest a Node.js timer waits: a longer one fires at once), which `mostNote` glosses.
 */
export function seconds(
  name: string,
  text: string | undefined,
  { positive = false, most, mostNote = "" }: { positive?: boolean; most: number; mostNote?: string },
): number | undefined {
  if (text === undefined) return undefined;
  const n = toNumber(text);
  if (!Number.isFinite(n) || n < 0 || (positive && n === 0) || n > most) {
    throw new UsageError(`--${name} must be a number of seconds ${positive ? "> 0" : ">= 0"} and at most ${most}${mostNote}, got '${text}'`);
  }
  return n;
}

/** One of `choices` given as `--name`, or undefined when it is absent. */
export function oneOf<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value !== undefined && !choices.includes(value as T)) throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${value}'`);
  return value as T | undefined;
}

/**
 * A device given as `--name`: cpu, cuda or cuda:N, the forms the addon takes (whether this machine has it, only the
 * addon can say), or undefined when it is absent.
 */
export function device(name: string, text: string | undefined): string | undefined {
  if (text !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(text)) throw new UsageError(`--${name} must be cpu, cuda or cuda:N, got '${text}'`);
  return text;
}
