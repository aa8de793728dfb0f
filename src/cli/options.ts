// Command-line option values shared by the project's CLIs (the server, generate, train:tiny, the fixture writer):
// each refuses a bad value naming its flag, before anything slow (a model load) starts.

/**
 * An integer >= min given as `--name` (digits only: no sign, exponent, hex or empty value, which Number() would
 * take), or undefined when it is absent.
 */
export function integer(name: string, text: string | undefined, min = 0): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${text}'`);
  return n;
}

/** One of `choices` given as `--name`, or undefined when it is absent. */
export function oneOf<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value !== undefined && !choices.includes(value as T)) throw new Error(`--${name} must be one of ${choices.join(", ")}, got '${value}'`);
  return value as T | undefined;
}
