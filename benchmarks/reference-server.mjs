// The client side of benchmarks/reference_sampler.py (LLaDA's generate.py in plain PyTorch, one generate per stdin
// line), shared by the benchmarks that time it side by side with dllm-serve.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const referenceScript = join(here, "reference_sampler.py");
/** The interpreter benchmarks/setup-python.sh prepares (CPU torch); PYTHON overrides it (a GPU machine's torch). */
export const python = process.env.PYTHON ?? join(here, ".venv", "bin", "python");

// The reference runs PyTorch as generate.py's users do, with libtorch's own choice of BLAS: the addon, once loaded,
// sets TORCH_BLAS_PREFER_CUBLASLT in this process's environment for the engine (src/native/load-addon.ts), and
// children would inherit it. What the user set before that is kept.
const userBlas = process.env.TORCH_BLAS_PREFER_CUBLASLT;
function referenceEnv() {
  const env = { ...process.env };
  if (userBlas === undefined) delete env.TORCH_BLAS_PREFER_CUBLASLT;
  else env.TORCH_BLAS_PREFER_CUBLASLT = userBlas;
  return env;
}

/** The prompts reference_sampler.py's make_prompts builds: ordinary ids < 250, row r has promptLen - 3r tokens. */
export function makePrompts(batch, promptLen) {
  return Array.from({ length: batch }, (_, r) =>
    Array.from({ length: Math.max(1, promptLen - 3 * r) }, (_, i) => (r * 53 + i * 29 + ((i * i) % 11)) % 250),
  );
}

/** reference_sampler.py with these arguments: one generate per request, answered in order. */
export class ReferenceServer {
  #child;
  #pending = [];
  #buffer = "";
  #stderr = "";
  /** Resolves with the server's first line ({ready, threads, torch, card}). */
  ready;

  get pid() {
    return this.#child.pid;
  }

  /** `env`: variables set over referenceEnv()'s, or removed where undefined. */
  constructor(args, env = {}) {
    const childEnv = referenceEnv();
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined) delete childEnv[name];
      else childEnv[name] = value;
    }
    this.#child = spawn(python, [referenceScript, ...args], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stdout.setEncoding("utf8");
    this.#child.stdout.on("data", (chunk) => {
      this.#buffer += chunk;
      let nl;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        this.#pending.shift()?.resolve(JSON.parse(line));
      }
    });
    this.#child.stderr.on("data", (d) => (this.#stderr += d));
    const fail = (err) => {
      for (const p of this.#pending.splice(0)) p.reject(err);
    };
    this.#child.on("error", fail);
    this.#child.on("close", (code) => fail(new Error(`reference_sampler.py exited with ${code}:\n${this.#stderr}`)));
    this.ready = new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  }

  /** One generate: {seconds, tokens, forwards, prompts, generated}. */
  run(batch, positions = "absolute") {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.stdin.write(JSON.stringify({ batch, positions }) + "\n");
    });
  }

  close() {
    this.#child.stdin.end();
  }
}
