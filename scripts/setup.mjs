// `npm install` runs this: build the native addon against a libtorch it finds, then compile the TypeScript.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { buildNative } from "./build-native.mjs";

// fileURLToPath, not .pathname: a folder with a space in its name stays "my proj", not "my%20proj".
const projectRoot = fileURLToPath(new URL("..", import.meta.url));
try {
  buildNative(projectRoot);
  console.log("[dllm-serve] compiling TypeScript ...");
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { cwd: projectRoot, stdio: "inherit" });
  console.log("[dllm-serve] ready");
} catch (err) {
  console.error(`\n[dllm-serve] setup failed: ${err.message}`);
  process.exit(1);
}
