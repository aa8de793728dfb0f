// How the CPU benchmarks that run one engine per process time it: `count` requests of the same rows, one after
// another, each in milliseconds (the caller has warmed the engine up).
export async function timeRequests(engine, rows, params, count) {
  const times = [];
  for (let r = 0; r < count; r++) {
    const started = performance.now();
    await engine.generate(rows, params);
    times.push(performance.now() - started);
  }
  return times;
}
