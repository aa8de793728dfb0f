// How every benchmark here times its cells: each once as a warm-up (unless warmUp is false: the caller warmed
// them up already), then `repeats` (at least 1) rounds that run every cell once, each round starting one cell
// later, so that no cell always runs first. Resolves to each cell's timed runs, in cell order: whatever
// `run(cell)` resolved to, round by round.
export async function timeRounds(cells, repeats, run, { warmUp = true } = {}) {
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error(`repeats must be a whole number >= 1, got ${repeats}`);
  if (warmUp) for (const c of cells) await run(c);
  const runs = cells.map(() => []);
  for (let round = 0; round < repeats; round++)
    for (let j = 0; j < cells.length; j++) {
      const k = (round + j) % cells.length;
      runs[k].push(await run(cells[k]));
    }
  return runs;
}
