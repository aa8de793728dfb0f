// `npm install` runs this: build the native addon against a libtorch it finds, then compile the TypeScript.
import { execFileSync } from "node:child_process";
import { buildNative } from "./build-native.mjs";

const projectRoot = new URL("..", import.meta.url).pathname;
try {
  buildNative(projectRoot);
  console.log("[dllm-serve] compiling TypeScript ...");
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { cwd: projectRoot, stdio: "inherit" });
  console.log("[dllm-serve] ready");
} catch (err) {
  console.error(`\n[dllm-serve] setup failed: ${err.message}`);
  process.exit(1);
}
