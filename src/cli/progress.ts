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
