// Errors the engine layer raises; the serving layers map them to their own responses.
import { NativeErrorCode } from "../native/addon-types.js";

/** A request that the engine refused: bad parameters or prompts (a client error). */
export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
  /** The request field at fault and a machine-readable code, where known (OpenAI's error `param` and `code`). */
  constructor(
    message: string,
    readonly param?: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The device failed (CUDA error, out of memory): the engine may need to be recycled. */
export class DeviceError extends Error {
  override name = "DeviceError";
}

/** The device ran out of memory for this batch: a smaller batch may fit. */
export class OutOfMemoryError extends DeviceError {
  override name = "OutOfMemoryError";
}

/** A call on an engine or model after dispose(). */
export class DisposedError extends Error {
  override name = "DisposedError";
  constructor(what = "engine") {
    super(`the ${what} has been disposed`);
  }
}

export function abortError(signal?: AbortSignal): unknown {
  return signal?.reason ?? new DOMException("the operation was aborted", "AbortError");
}

/** Turns an error from the addon into one of the classes above (or an AbortError). */
export function fromNative(err: unknown, signal?: AbortSignal): unknown {
  const e = err as Error & { code?: string };
  switch (e?.code) {
    case NativeErrorCode.aborted:
      return abortError(signal);
    case NativeErrorCode.invalidArgument:
      return new InvalidRequestError(e.message);
    case NativeErrorCode.outOfMemory:
      return new OutOfMemoryError(e.message);
    case NativeErrorCode.device:
      return new DeviceError(e.message);
    case NativeErrorCode.disposed:
      return new DisposedError();
    default:
      return err;
  }
}
