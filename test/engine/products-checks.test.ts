// The model's matrix products (native/src/model/products.h) are held to a float64 product by a check program the
// native build makes next to the addon (native/checks/products-checks.cpp). Here, without a GPU, it checks that
// the CPU's products are at::linear's and that the kernel refuses CPU tensors; the device run
// (benchmarks/device-run.sh, stage "products") runs it on a card with every tile and split.
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("matrix products", () => {
  it("on the CPU are at::linear's, and the CUDA kernel refuses CPU tensors", async () => {
    const run = await runChecks("products");
    expect(run.failed).toEqual([]);
    expect(run.passed).toBe(2);
    expect(run.summary).toBe("0 failed");
  });
});
