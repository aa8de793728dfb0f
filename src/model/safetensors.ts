// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian u64 N, the length of the JSON header
//   N bytes   JSON: {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}
//   rest      the tensor data, raw little-endian, row-major; offsets are relative to the end of the header.
// Only the floating-point dtypes LLaDA checkpoints use are supported.
import { readFileSync, writeFileSync } from "node:fs";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

/** A tensor to write: its shape and its values as float32 (converted to the file dtype on write). */
export interface TensorData {
  shape: number[];
  data: Float32Array;
}

/** A tensor read back: the dtype named in the file and its values converted exactly to float64. */
export interface ReadTensor {
  dtype: string;
  shape: number[];
  data: Float64Array;
}

/** Bytes per element of each supported dtype. */
export const BYTES_PER_ELEMENT: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

// One shared scratch word to reinterpret float32 bits as uint32 and back.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 → bfloat16 bits, rounding to nearest, ties to even. NaNs stay NaN (quiet). */
export function float32ToBFloat16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040;
  // Adding 0x7fff plus the lowest kept bit rounds the dropped 16 bits to nearest-even; a carry out of the
  // mantissa correctly bumps the exponent (up to infinity).
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** float32 → IEEE 754 binary16 bits, rounding to nearest, ties to even, with subnormals; overflow gives ±Inf. */
export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x0200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Below 2^-25 everything rounds to zero (exactly 2^-25 is a tie that goes to the even zero).
    if (halfExponent < -10) return sign;
    // Subnormal result: the full 24-bit significand, in units of 2^-24, is shifted right by 14 - halfExponent.
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShift(significand, shift);
  }
  // Normal result: rounding may carry into the exponent, which is exactly right (up to 0x7c00 = Inf).
  return sign | ((halfExponent << 10) + roundShift(mantissa, 13));
}

/** value >>> shift, rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const dropped = value & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return dropped > halfway || (dropped === halfway && (kept & 1) === 1) ? kept + 1 : kept;
}

/** IEEE 754 binary16 bits → number (exact). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (0x400 + mantissa) * 2 ** (exponent - 25);
}

/** bfloat16 bits → number (exact). */
export function bfloat16BitsToNumber(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/**
 * Serialises tensors to a safetensors buffer. The data is laid out contiguously in the iteration order of
 * `tensors`, which is also the order of the header's keys.
 */
export function encodeSafetensors(
  tensors: Map<string, TensorData> | Array<[string, TensorData]>,
  dtype: SafetensorsDtype,
  metadata?: Record<string, string>,
): Buffer {
  const width = BYTES_PER_ELEMENT[dtype];
  if (width === undefined) throw new Error(`safetensors: unsupported dtype '${dtype}' (F32, F16, BF16)`);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  const entries: Array<[string, TensorData]> = [];
  let dataBytes = 0;
  for (const [name, tensor] of tensors) {
    if (name === "" || name === "__metadata__") throw new Error(`safetensors: invalid tensor name '${name}'`);
    if (Object.hasOwn(header, name)) throw new Error(`safetensors: tensor '${name}' is given twice`);
    if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`safetensors: tensor '${name}' has an invalid shape [${tensor.shape.join(", ")}]`);
    const count = elementCount(tensor.shape);
    if (tensor.data.length !== count)
      throw new Error(
        `safetensors: tensor '${name}' has ${tensor.data.length} values for shape [${tensor.shape.join(", ")}]`,
      );
    header[name] = { dtype, shape: tensor.shape, data_offsets: [dataBytes, dataBytes + count * width] };
    entries.push([name, tensor]);
    dataBytes += count * width;
  }

  // Pad the header with spaces so that the data (after the 8-byte length) starts 8-byte aligned.
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.byteLength(json);
  const out = Buffer.alloc(8 + headerBytes + dataBytes);
  out.writeBigUInt64LE(BigInt(headerBytes), 0);
  out.write(json, 8, "utf8");

  let offset = 8 + headerBytes;
  for (const [, { data }] of entries) {
    for (let i = 0; i < data.length; i++) {
      if (dtype === "F32") out.writeFloatLE(data[i], offset);
      else out.writeUInt16LE(dtype === "BF16" ? float32ToBFloat16Bits(data[i]) : float32ToFloat16Bits(data[i]), offset);
      offset += width;
    }
  }
  return out;
}

/** Writes `encodeSafetensors(tensors, dtype, metadata)` to `path`. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorData> | Array<[string, TensorData]>,
  dtype: SafetensorsDtype,
  metadata?: Record<string, string>,
): void {
  writeFileSync(path, encodeSafetensors(tensors, dtype, metadata));
}

/** Reads every tensor of an F32 / F16 / BF16 safetensors file; errors name the file. */
export function readSafetensors(path: string): Map<string, ReadTensor> {
  const file = readFileSync(path);
  function fail(why: string): never {
    throw new Error(`${path}: ${why}`);
  }
  if (file.length < 8) fail("truncated: shorter than the 8-byte header length");
  const headerLength = file.readBigUInt64LE(0);
  if (headerLength > BigInt(file.length - 8)) fail(`truncated: the header needs ${headerLength} bytes`);
  const dataStart = 8 + Number(headerLength);
  const dataLength = file.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(file.toString("utf8", 8, dataStart));
  } catch (e) {
    fail(`invalid JSON header: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");

  const out = new Map<string, ReadTensor>();
  for (const [name, spec] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: offsets } = (spec ?? {}) as Record<string, unknown>;
    if (typeof dtype !== "string") fail(`tensor '${name}' has no dtype`);
    const width = BYTES_PER_ELEMENT[dtype as SafetensorsDtype];
    if (width === undefined) fail(`tensor '${name}' has unsupported dtype ${String(dtype)} (F32, F16, BF16)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor '${name}' has an invalid shape`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    )
      fail(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = elementCount(shape as number[]);
    if (end - begin !== count * width)
      fail(`tensor '${name}': ${end - begin} bytes do not match shape [${(shape as number[]).join(", ")}] of ${dtype}`);
    if (end > dataLength) fail(`truncated: tensor '${name}' ends at byte ${end} of ${dataLength} data bytes`);

    const data = new Float64Array(count);
    const base = dataStart + begin;
    for (let i = 0; i < count; i++) {
      const at = base + i * width;
      data[i] =
        dtype === "F32"
          ? file.readFloatLE(at)
          : dtype === "BF16"
            ? bfloat16BitsToNumber(file.readUInt16LE(at))
            : float16BitsToNumber(file.readUInt16LE(at));
    }
    out.set(name, { dtype: dtype as string, shape: shape as number[], data });
  }
  return out;
}
