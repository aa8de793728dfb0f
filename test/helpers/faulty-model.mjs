// Fault injection for the serving tests: a stand-in model module (WorkerConfig.modelModule) that wraps the real
// native Model and fails the way devices fail. It lives in test/ and is not built into dist/, so no production
// configuration can reach it. The faults come from the module URL: faulty-model.mjs?spec=<JSON>, with
//   workers: [indexes]        which workers misbehave (first start only; a restarted worker is healthy)
//   deviceErrorOnBatch: n     the n-th batch throws a DeviceError
//   oomAbove: n               batches of more than n requests throw an OutOfMemoryError
//   oomPromptsOver: n         batches holding a prompt of more than n tokens throw an OutOfMemoryError
//   loadDelayMs: n            the load takes n ms longer
//   failLoad: true            the load fails
//   hangOnBatch: n            the n-th batch never finishes
//   crashOnBatch: n           the n-th batch aborts the whole process (like a native crash)
import { DeviceError, OutOfMemoryError } from "../../dist/engine/errors.js";
import { Model } from "../../dist/model/model.js";

const spec = JSON.parse(new URL(import.meta.url).searchParams.get("spec") ?? "{}");

export function faultyModelUrl(faults) {
  return `${new URL(import.meta.url).href.split("?")[0]}?spec=${encodeURIComponent(JSON.stringify(faults))}`;
}

export async function loadModel(config) {
  const faulty = config.incarnation === 0 && (spec.workers ?? [config.index]).includes(config.index);
  if (faulty && spec.loadDelayMs) await new Promise((r) => setTimeout(r, spec.loadDelayMs));
  if (faulty && spec.failLoad) throw new Error("cannot read the weights (injected)");
  // Loaded as the worker loads the real one (src/cluster/worker.ts), so a faulty worker runs what a healthy one would.
  const { modelPath, device, dtype, threads, cudaGraphs, promptBucket } = config;
  const model = await Model.load({ modelPath, device, dtype, threads, cudaGraphs, promptBucket });
  if (!faulty) return model;
  let batches = 0;
  return {
    info: model.info,
    promptIds: (input) => model.promptIds(input),
    check: (row, params) => model.check(row, params),
    get forwardPasses() {
      return model.forwardPasses;
    },
    get stepsSetUp() {
      return model.stepsSetUp;
    },
    dispose: () => model.dispose(),
    async decode(rows, params, options) {
      batches++;
      if (spec.deviceErrorOnBatch === batches) throw new DeviceError("CUDA error: an illegal memory access was encountered (injected)");
      if (spec.oomAbove !== undefined && rows.length > spec.oomAbove) {
        throw new OutOfMemoryError(`CUDA out of memory. Tried to allocate 2.00 GiB (injected for a batch of ${rows.length})`);
      }
      if (spec.oomPromptsOver !== undefined && rows.some((r) => r.promptIds.length > spec.oomPromptsOver)) {
        throw new OutOfMemoryError(`CUDA out of memory. Tried to allocate 2.00 GiB (injected for a prompt of over ${spec.oomPromptsOver} tokens)`);
      }
      if (spec.hangOnBatch === batches) return new Promise(() => {});
      if (spec.crashOnBatch === batches) process.abort();
      return model.decode(rows, params, options);
    },
  };
}
