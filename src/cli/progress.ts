// A one-line progress bar on a terminal (stderr); plain milestone lines when stderr is not a TTY (logs).
export function loadProgress(label: string): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  const started = Date.now();
  let lastTenth = -1;
  return (done, total) => {
    const fraction = total > 0 ? done / total : 1;
    if (tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stderr.write(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} tensors ${secs}s`);
      if (done === total) process.stderr.write("\n");
    } else {
      const tenth = Math.floor(fraction * 10);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`${label}: ${done}/${total} tensors (${Math.round(fraction * 100)}%)\n`);
      }
    }
  };
}

/** Load progress of several workers: one status line on a terminal, a line per worker per quarter in logs. */
export function workerProgress(): (worker: number, done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  const shown = new Map<number, number>();
  const fractions = new Map<number, number>();
  return (worker, done, total) => {
    const fraction = total > 0 ? done / total : 1;
    fractions.set(worker, fraction);
    if (tty) {
      const parts = [...fractions].sort(([a], [b]) => a - b).map(([w, f]) => `worker ${w} ${Math.round(f * 100)}%`);
      process.stderr.write(`\rloading: ${parts.join("  ")}`);
      if ([...fractions.values()].every((f) => f === 1)) process.stderr.write("\n");
    } else {
      const quarter = Math.floor(fraction * 4);
      if (shown.get(worker) !== quarter) {
        shown.set(worker, quarter);
        process.stderr.write(`loading: worker ${worker} ${done}/${total} tensors (${Math.round(fraction * 100)}%)\n`);
      }
    }
  };
}
