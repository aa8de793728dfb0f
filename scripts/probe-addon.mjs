// Loads a freshly built addon in a child process before anything loads it in-process. A binary that does not fit
// the machine (libtorch's libraries missing from the loader's path, built for another glibc, Node.js or CUDA driver)
// then fails the build with what went wrong, rather than crashing the server that loads it later.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

// The child: load the addon and show that it is ours and that libtorch answers; a failure prints its message alone.
const CHILD = `
try {
  const addon = require(process.argv[1]);
  if (typeof addon.Engine !== "function" || typeof addon.libtorchVersion !== "string") throw new Error("it is not dllm-serve's addon (no Engine or libtorchVersion)");
  process.stdout.write(JSON.stringify({ libtorch: addon.libtorchVersion, cuda: addon.cudaAvailable() }));
} catch (err) {
  process.stderr.write(String(err?.message ?? err).split("\\nRequire stack:")[0]);
  process.exit(1);
}
`;

/**
 * Loads the addon at `addonPath` in a child process: { libtorch, cuda } (libtorch's version; whether it sees a CUDA
 * device) when it loads, else an Error that says how it failed.
 */
export function probeAddon(addonPath, timeoutMs = 120_000) {
  if (!existsSync(addonPath)) throw new Error(`the native addon ${addonPath} is not there: the build did not make it`);
  const child = spawnSync(process.execPath, ["-e", CHILD, path.resolve(addonPath)], {
    // As the loader sets it (src/native/load-addon.ts, which also picks cuBLASLt, nothing a load needs): libgomp
    // must not spin while this child starts.
    env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? "PASSIVE" },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  const said = lastLines(child.stderr);
  const fits =
    "An addon that does not load was usually built against another libtorch, Node.js, glibc or CUDA driver than " +
    "this machine has: rebuild it (`npm run build:native`), with LIBTORCH naming a libtorch made for this machine.";
  if (child.error?.code === "ETIMEDOUT") throw new Error(`loading the native addon ${addonPath} took over ${timeoutMs / 1000} s`);
  if (child.error) throw new Error(`could not start Node.js to load the native addon: ${child.error.message}`);
  if (child.signal) {
    throw new Error(`loading the native addon ${addonPath} crashed the process (${child.signal})${said ? `:\n${said}` : ""}\n${fits}`);
  }
  if (child.status !== 0) throw new Error(`the native addon ${addonPath} does not load:\n${said || `exit status ${child.status}`}\n${fits}`);
  return JSON.parse(child.stdout);
}

/** The end of a child's stderr (a crash may leave a long report). */
function lastLines(text) {
  return (text ?? "").trim().split("\n").slice(-6).join("\n");
}
