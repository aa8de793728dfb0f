// The registry is the one list of algorithms and the request fields each reads: every field it names is one a
// request may send, and reaches the parameters the engine gets.
import { describe, expect, it } from "vitest";
import { ALGORITHMS } from "../../src/model/algorithms.js";
import { samplerParams } from "../../src/model/model.js";
import { parseChatRequest } from "../../src/http/request.js";

const defaults = { algorithm: "basic", chatTemplate: true, maxSequenceLength: 256 };
const base = { messages: [{ role: "user", content: "Hi" }], max_tokens: 32 };

// A value for each field other than its default, and where it lands in the engine's parameters.
const FIELDS: Record<string, { value: unknown; param: string; expected: unknown }> = {
  steps: { value: 16, param: "steps", expected: 16 },
  block_length: { value: 16, param: "blockLength", expected: 16 },
  temperature: { value: 0.5, param: "temperature", expected: 0.5 },
  top_k: { value: 5, param: "topK", expected: 5 },
  top_p: { value: 0.5, param: "topP", expected: 0.5 },
  cfg_scale: { value: 1.5, param: "cfgScale", expected: 1.5 },
  remasking: { value: "random", param: "remasking", expected: "random" },
  early_stop: { value: false, param: "earlyStop", expected: false },
  logits_eos_inf: { value: true, param: "logitsEosInf", expected: true },
  confidence_eos_eot_inf: { value: true, param: "confidenceEosEotInf", expected: true },
  threshold: { value: 0.7, param: "threshold", expected: 0.7 },
  factor: { value: 2, param: "factor", expected: 2 },
  low_threshold: { value: 0.2, param: "lowThreshold", expected: 0.2 },
};

// The decoders' own fields; every other field is a sampling field every algorithm takes.
const DECODER_FIELDS = ["threshold", "factor", "low_threshold"];

describe("the algorithm registry", () => {
  for (const spec of ALGORITHMS) {
    it(`${spec.name}: every parameter it lists is a request field that reaches the engine`, () => {
      for (const field of spec.parameters) {
        const f = FIELDS[field];
        expect(f, `no request field '${field}'`).toBeDefined();
        // top_k and top_p truncate only at temperature > 0.
        const parsed = parseChatRequest({ ...base, temperature: 0.5, generation_algorithm: spec.name, [field]: f.value }, defaults);
        const { seed: _seed, stop: _stop, signal: _signal, ...decoding } = parsed.options;
        const params = samplerParams(decoding) as unknown as Record<string, unknown>;
        expect(params[f.param], field).toEqual(f.expected);
        expect(params.algorithm).toBe(spec.name);
      }
    });

    // Every sampling field every algorithm takes, listed (so /generation/algorithms shows it): each field above but
    // the decoders' own.
    it(`${spec.name}: lists every sampling field`, () => {
      const sampling = Object.keys(FIELDS).filter((field) => !DECODER_FIELDS.includes(field));
      expect(spec.parameters).toEqual(expect.arrayContaining(sampling));
    });
  }

  // The reverse: a decoder field an algorithm does not list is refused, naming that field. Every algorithm lacks
  // at least one (basic low_threshold, dinfer_blockwise factor and low_threshold, dinfer_hierarchy factor).
  for (const spec of ALGORITHMS) {
    const unlisted = DECODER_FIELDS.filter((field) => !spec.parameters.includes(field));
    it(`${spec.name}: refuses the decoder fields it does not list (${unlisted.join(", ")})`, () => {
      expect(unlisted.length).toBeGreaterThan(0);
      for (const field of unlisted) {
        const request = { ...base, generation_algorithm: spec.name, [field]: FIELDS[field].value };
        expect(() => parseChatRequest(request, defaults), field).toThrow(
          expect.objectContaining({ status: 400, param: field, message: expect.stringContaining(`'${field}' is not a parameter of ${spec.name}`) }),
        );
      }
    });
  }
});
