// A stand-in for the native model that holds each batch for a fixed "device time" and does nothing else.
// Benchmarks only: it lets benchmarks/serving.mjs measure the router, the queues and the worker threads alone.
// The device time per batch comes from the module URL: simulated-model.mjs?batchMs=100.
const batchMs = Number(new URL(import.meta.url).searchParams.get("batchMs") ?? 100);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class SimulatedModel {
  info = {
    dModel: 4096, nLayers: 32, nHeads: 32, nKvHeads: 32, headDim: 128, mlpHiddenSize: 12288, vocabSize: 126464,
    embeddingSize: 126464, maxSequenceLength: 4096, ropeTheta: 500000, rmsNormEps: 1e-5, maskTokenId: 126336,
    eosTokenId: 126081, padTokenId: 126081, device: "simulated", dtype: "bfloat16", cudaGraphs: false, promptBucket: 1,
    threads: 1,
  };

  promptIds(input) {
    const text = input.prompt ?? input.messages.map((m) => m.content).join("\n");
    return Array.from(text, (c) => c.charCodeAt(0));
  }

  check() {}

  forwardPasses = 0;
  stepsSetUp = 0;

  async decode(rows, params, options = {}) {
    const blocks = params.genLength / params.blockLength;
    this.forwardPasses += params.steps;
    for (let block = 0; block < blocks; block++) {
      if (batchMs > 0) await sleep(batchMs / blocks);
      if (options.signal?.aborted) throw options.signal.reason;
      rows.forEach((_, row) => options.onBlock?.(row, { block, tokens: new Int32Array(params.blockLength), delta: "", stopped: false }));
    }
    return rows.map((r) => ({
      text: "",
      tokens: [],
      finishReason: "length",
      usage: { promptTokens: r.promptIds.length, completionTokens: 0, totalTokens: r.promptIds.length },
      seed: r.seed,
      forwards: params.steps,
    }));
  }

  async dispose() {}
}

export async function loadModel() {
  return new SimulatedModel();
}
