// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}, with the status that goes with them.
import { InvalidRequestError } from "../engine/errors.js";
import { QueueFullError, ServiceUnavailableError } from "../cluster/router.js";

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds, sent as Retry-After. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);

/** Maps what the serving layers throw (and fastify's own errors) to an ApiError. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof InvalidRequestError) return invalid(err.message, err.param ?? null, err.code ?? null);
  if (err instanceof QueueFullError) return new ApiError(429, err.message, "rate_limit_error", null, "queue_full", 1);
  if (err instanceof ServiceUnavailableError) return new ApiError(503, err.message, "unavailable_error", null, null, 5);
  const e = err as { statusCode?: number; code?: string; message?: string; name?: string };
  if (e?.name === "AbortError") return new ApiError(499, "the request was cancelled", "cancelled", null, "cancelled");
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    // fastify's own: bad JSON (400), body too large (413), unsupported media type (415), ...
    const type = e.statusCode === 404 ? "not_found_error" : "invalid_request_error";
    return new ApiError(e.statusCode, e.message ?? "bad request", type, null, e.code ?? null);
  }
  return new ApiError(500, "internal server error", "server_error");
}
