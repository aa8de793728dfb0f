export function faultyModelUrl(faults: {
  workers?: number[];
  deviceErrorOnBatch?: number;
  oomAbove?: number;
  hangOnBatch?: number;
  crashOnBatch?: number;
}): string;
