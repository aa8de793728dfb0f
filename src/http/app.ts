// The fastify app: OpenAI-compatible routes and the seed system's status routes over the in-process server.
// A factory apart from the process entry (src/server.ts), so tests build it on any port.
import { createHash, timingSafeEqual } from "node:crypto";
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Transform } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { DllmServer } from "../api/server.js";
import { ServiceUnavailableError } from "../cluster/router.js";
import { ApiError, toApiError } from "./errors.js";
import { requestDefaults, type AppContext } from "./context.js";
import { Metrics } from "./metrics.js";
import { DEFAULT_ALGORITHM, resolveAlgorithm } from "../model/algorithms.js";
import { MAX_CHOICES } from "./request.js";
import { openaiRoutes } from "./routes/openai.js";
import { statusRoutes } from "./routes/status.js";

export interface AppOptions {
  server: DllmServer;
  modelId: string;
  /** Default generation_algorithm (a name or alias; an unknown one throws here, not at every request). */
  algorithm?: string;
  /** false: chat messages are joined into a raw prompt (--no-chat-template). */
  chatTemplate?: boolean;
  /** When set, every route but /health and /v1/models needs it (Authorization: Bearer, or X-Api-Key). */
  apiKey?: string;
  /**
   * Largest request body in bytes, on every path. Default: per path, from the model's max_sequence_length and the
   * prompts the path may carry, under a 32 MiB cap (see bodyLimitFor).
   */
  bodyLimit?: number;
  /** Origin browsers may call from ("*" for any); CORS is off when unset. */
  cors?: string;
  logger?: FastifyServerOptions["logger"];
}

/** /health and the model list (and one model of it) need no key; nothing else does. */
const isPublic = (path: string) => path === "/health" || path === "/v1/models" || path.startsWith("/v1/models/");
const HARD_BODY_LIMIT = 32 * 1024 * 1024;

/**
 * The largest body a request to this path can need: a full context of text, generously escaped, for each prompt
 * it may carry (/v1/completions takes up to MAX_CHOICES; a chat is one conversation).
 */
export function bodyLimitFor(maxSequenceLength: number, path: string): number {
  const prompts = path === "/v1/completions" ? MAX_CHOICES : 1;
  return Math.min(HARD_BODY_LIMIT, 64 * 1024 + prompts * maxSequenceLength * 32);
}

/** Compares API keys in constant time (hashes first, so lengths leak nothing either). */
function keyMatches(given: string, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && auth.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim();
  const key = headers["x-api-key"];
  return typeof key === "string" ? key : undefined;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    // fastify's request logs carry method, URL, host and remote address: never headers (keys) or bodies (prompts).
    // This is only the hard cap while reading; the real limit, from the model config, is checked on arrival.
    bodyLimit: options.bodyLimit ?? HARD_BODY_LIMIT,
    // A request that comes while the server drains is refused by the onRequest hook below in OpenAI's shape, not
    // with fastify's own 503 body.
    return503OnClosing: false,
    clientErrorHandler,
  });
  const tracked = trackConnections(app.server);
  const ctx: AppContext = {
    server: options.server,
    metrics: new Metrics(options.server),
    modelId: options.modelId,
    algorithm: resolveAlgorithm(options.algorithm ?? DEFAULT_ALGORITHM).algorithm,
    chatTemplate: options.chatTemplate ?? true,
  };

  const bodyLimit = (path: string) => options.bodyLimit ?? bodyLimitFor(requestDefaults(ctx).maxSequenceLength, path);
  const tooLarge = (limit: number) =>
    new ApiError(413, `the request body is larger than this model's limit of ${limit} bytes`, "invalid_request_error", null, "body_too_large");

  // Only JSON bodies: anything else is a 415 (fastify also accepts text/plain by default).
  app.removeContentTypeParser("text/plain");

  app.addHook("onRequest", async (request, reply) => {
    const path = pathOf(request.url);
    if (options.cors) {
      reply.header("access-control-allow-origin", options.cors);
      reply.header("vary", "origin");
      if (request.method === "OPTIONS") {
        reply.header("access-control-allow-methods", "GET, POST, OPTIONS");
        // Whatever the browser asks to send: clients add headers of their own (the openai package's x-stainless-*).
        const asked = request.headers["access-control-request-headers"];
        reply.header("access-control-allow-headers", typeof asked === "string" && asked ? asked : "authorization, content-type, x-api-key");
        reply.header("access-control-max-age", "600");
        return reply.code(204).send();
      }
    }
    // On a connection opened before the drain (every answer from then on says Connection: close, but a client may
    // have sent its next request before reading it), as the router refuses requests once closing.
    if (tracked.draining) throw new ServiceUnavailableError("the server is shutting down");
    if (options.apiKey && !isPublic(path)) {
      const key = presentedKey(request.headers);
      if (!key || !keyMatches(key, options.apiKey)) {
        throw new ApiError(401, key ? "invalid API key" : "missing API key (Authorization: Bearer <key>)", "authentication_error", null, "invalid_api_key");
      }
    }
    // Until every worker has loaded, only health and metrics answer (health says 503 itself). Later, a worker that
    // restarts leaves the others serving: the router holds requests until some worker is healthy.
    if (!ctx.server.isReady && path !== "/health" && path !== "/metrics") {
      throw new ApiError(503, "the model is loading", "unavailable_error", null, "model_loading", 5);
    }
    const limit = bodyLimit(path);
    if (Number(request.headers["content-length"] ?? 0) > limit) throw tooLarge(limit);
  });

  // A body without a Content-Length (chunked) is counted as it arrives.
  app.addHook("preParsing", async (request, _reply, payload) => {
    if (request.headers["content-length"] !== undefined) return payload;
    const limit = bodyLimit(pathOf(request.url));
    let received = 0;
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, next) {
          received += chunk.length;
          next(received > limit ? tooLarge(limit) : null, chunk);
        },
      }),
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) request.log.error({ err }, "request failed");
    ctx.metrics.failed(apiError.type);
    if (apiError.retryAfter !== undefined) reply.header("retry-after", String(apiError.retryAfter));
    // A client that went away gets nothing; the socket is closed.
    if (reply.raw.destroyed) return;
    reply.code(apiError.status).send(apiError.body());
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(new ApiError(404, `no route for ${request.method} ${pathOf(request.url)}`, "not_found_error").body());
  });

  openaiRoutes(app, ctx);
  statusRoutes(app, ctx);
  return app;
}

/**
 * HTTP that Node cannot parse (a Content-Length that is no number, a body cut short of it, headers too large, a
 * request too slow to arrive) is answered in OpenAI's error shape, as fastify's default answers in its own.
 */
function clientErrorHandler(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
  const what =
    status === 408
      ? "the request did not arrive in time"
      : err.code === "HPE_INVALID_EOF_STATE"
        ? "the connection ended before the whole request arrived (a body shorter than its Content-Length?)"
        : `the request is not valid HTTP (${err.reason ?? err.message})`;
  const body = JSON.stringify(new ApiError(status, what, "invalid_request_error").body());
  if (!socket.writable) return void socket.destroy();
  // The connection cannot carry another request: closed once the answer is out.
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * Each app's open connections and how many answers each is writing, the answers under way, and whether the app is
 * draining, for closeApp.
 */
interface Tracked {
  connections: Map<Socket, number>;
  answers: Set<ServerResponse>;
  draining: boolean;
}
const trackedApps = new WeakMap<Server, Tracked>();

function trackConnections(server: Server): Tracked {
  const t: Tracked = { connections: new Map(), answers: new Set(), draining: false };
  trackedApps.set(server, t);
  server.on("connection", (socket: Socket) => {
    t.connections.set(socket, 0);
    socket.once("close", () => t.connections.delete(socket));
  });
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    t.connections.set(socket, (t.connections.get(socket) ?? 0) + 1);
    t.answers.add(response);
    if (t.draining) response.setHeader("connection", "close");
    response.once("close", () => {
      t.answers.delete(response);
      const answers = t.connections.get(socket);
      if (answers !== undefined) t.connections.set(socket, answers - 1);
    });
  });
  return t;
}

/**
 * Closes the app once `drained` settles (every request answered or cancelled: DllmServer.close). It stops taking
 * connections at once; every answer whose headers go out from now on says `Connection: close`, so that no client
 * sends another request on its connection, and its connection closes after it. A request that comes all the same
 * (sent before that answer arrived) is refused with a 503 in OpenAI's shape. A second after the drain, the
 * connections writing no answer are dropped: Node's close() waits for a connection that never sent a request (a
 * client's spare socket, a preconnect) until its client closes it, which could hold the exit for ever. An answer
 * still being written then (a slow reader's stream) goes on to its end.
 */
export async function closeApp(app: FastifyInstance, drained: Promise<unknown>): Promise<void> {
  const t = trackedApps.get(app.server)!;
  t.draining = true;
  for (const answer of t.answers) if (!answer.headersSent) answer.setHeader("connection", "close");
  // An answer whose headers went out before (a stream) leaves its connection kept alive: closed right after it.
  app.server.keepAliveTimeout = 1;
  const closed = app.close();
  try {
    await drained;
  } finally {
    const dropIdle = () => {
      for (const [socket, answers] of t.connections) if (answers === 0) socket.destroy();
    };
    const grace = setTimeout(dropIdle, 1000);
    await closed.finally(() => clearTimeout(grace));
  }
}

/** A request URL's path, without its query. */
function pathOf(url: string): string {
  return url.split("?")[0];
}
