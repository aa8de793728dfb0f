// Loads a checkpoint in a fresh process and prints how much anonymous and file-backed resident memory the load
// (plus one forward, which touches every weight) added: {"anon": bytes, "file": bytes}. Used by loading.test.ts.
import { readFileSync } from "node:fs";
import { Engine } from "../../dist/engine/engine.js";
import { loadAddon } from "../../dist/native/load-addon.js";

const rss = (field) => {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
  return Number.parseInt(line.slice(field.length + 1), 10) * 1024;
};

// libtorch's own start-up (loading, thread pools) is not the weights: pay it before the baseline.
loadAddon();
const warm = await Engine.random({ d_model: 8, n_layers: 1, n_heads: 1, mlp_hidden_size: 8, vocab_size: 8, max_sequence_length: 8, mask_token_id: 7, eos_token_id: 6 }, 1);
await warm.forward([[1, 2, 3]]);
await warm.dispose();

const [anon, file] = [rss("RssAnon"), rss("RssFile")];
const engine = await Engine.load(process.argv[2]);
await engine.forward([[1, 2, 3]]);
console.log(JSON.stringify({ anon: rss("RssAnon") - anon, file: rss("RssFile") - file }));
await engine.dispose();
