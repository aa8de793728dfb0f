// The server's flags as parsed, where a flag's effect cannot be seen from a CPU-only run of the server.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/options.js";
import { parseServerArgs } from "../../src/cli/server-args.js";
import { Router } from "../../src/cluster/router.js";

describe("parseServerArgs", () => {
  it("leaves CUDA graphs to the engine's default (on, CUDA only) unless --no-cuda-graphs turns them off", () => {
    expect(parseServerArgs([], {}).server.cudaGraphs).toBeUndefined();
    expect(parseServerArgs(["--no-cuda-graphs"], {}).server.cudaGraphs).toBe(false);
    // The old opt-in flag is gone rather than silently accepted.
    expect(() => parseServerArgs(["--cuda-graphs"], {})).toThrow(/cuda-graphs/);
  });

  it("leaves the prompt bucket to the engine's default (32 on CUDA, 1 on the CPU) unless --prompt-bucket sets it", () => {
    expect(parseServerArgs([], {}).server.promptBucket).toBeUndefined();
    expect(parseServerArgs(["--prompt-bucket", "64"], {}).server.promptBucket).toBe(64);
    expect(() => parseServerArgs(["--prompt-bucket", "5000"], {})).toThrow(/--prompt-bucket must be at most 4096/);
  });

  it("refuses timeouts past Node's longest timer (which would fire after 1 ms), as does the in-process router", () => {
    expect(parseServerArgs(["--batch-timeout", "2147483"], {}).server.batchTimeoutMs).toBe(2_147_483_000);
    for (const flag of ["--batch-timeout", "--shutdown-timeout", "--max-wait-time"]) {
      expect(() => parseServerArgs([flag, "2200000"], {})).toThrow(new RegExp(`^${flag} must be a number of seconds .* at most 2147483 `));
    }
    // A bad value is the command line's fault: the shared UsageError, as every CLI's.
    expect(() => parseServerArgs(["--shutdown-timeout", ""], {})).toThrow(UsageError);
    expect(() => new Router({ modelPath: "/unused", devices: ["cpu"], dtype: "float32", batchSize: 1, maxWaitMs: 0, policy: "round-robin", batchTimeoutMs: 2 ** 31 })).toThrow(
      /batchTimeoutMs must be in \[0, 2147483647\]/,
    );
  });

  it("resolves --algorithm's aliases, and refuses an unknown one listing the available", () => {
    expect(parseServerArgs([], {}).algorithm).toBe("basic");
    expect(parseServerArgs(["--algorithm", "dual"], {}).algorithm).toBe("dual_cache");
    expect(() => parseServerArgs(["--algorithm", "warp_drive"], {})).toThrow(
      /^--algorithm 'warp_drive' is not a known algorithm; available: basic, prefix_cache, dual_cache, /,
    );
  });
});
