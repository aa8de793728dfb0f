// --only NAME for the CPU benchmarks that store every model's results in one file. A name that matches nothing is
// refused (it would store an empty run), and --only needs an explicit --out: a run of one model must not replace
// the stored results of all of them. (Merging it into the stored file instead would mix runs of different days and
// machine states in one file, whose numbers README compares side by side.)
export function onlyModels(models, only, out) {
  if (only === undefined) return models;
  const names = models.map((m) => m.name);
  if (!names.includes(only)) throw new Error(`--only: unknown ${only} (one of: ${names.join(", ")})`);
  if (out === undefined) throw new Error("--only needs --out FILE: a partial run must not replace the stored results of every model");
  return models.filter((m) => m.name === only);
}
