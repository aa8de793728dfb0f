// The one summary of repeated timings every benchmark here reports: the median run. With an even number of runs,
// the slower of the two middle ones (a real run, never an average of two; README's tables say so).
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
