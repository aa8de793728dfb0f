// Command-line option values shared by the project's small CLIs (generate, train:tiny, the fixture writer).

/** A whole number (digits only: no sign, exponent or hex) given as `--name`, or undefined when it is absent. */
export function wholeNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new Error(`--${name} must be a whole number, got '${text}'`);
  return n;
}
