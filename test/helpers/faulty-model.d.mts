export function faultyModelUrl(faults: {
  workers?: number[];
  deviceErrorOnBatch?: number;
  oomAbove?: number;
  oomPromptsOver?: number;
  loadDelayMs?: number;
  failLoad?: boolean;
  hangOnBatch?: number;
  crashOnBatch?: number;
}): string;
