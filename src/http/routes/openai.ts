// POST /v1/chat/completions, POST /v1/completions (streamed as server-sent events, one chunk per committed
// block), GET /v1/models.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Served } from "../../cluster/router.js";
import { toApiError } from "../errors.js";
import { requestDefaults, type AppContext } from "../context.js";
import { parseChatRequest, parseCompletionRequest, type ParsedRequest } from "../request.js";

type Kind = "chat" | "text";

function usage(g: Served) {
  return { prompt_tokens: g.usage.promptTokens, completion_tokens: g.usage.completionTokens, total_tokens: g.usage.totalTokens };
}

/** The shapes of one endpoint's responses and stream chunks. */
function shapes(kind: Kind, id: string, created: number, model: string) {
  const head = { id, created, model };
  if (kind === "chat") {
    return {
      complete: (g: Served) => ({
        ...head,
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: g.text }, logprobs: null, finish_reason: g.finishReason }],
        usage: usage(g),
      }),
      opening: () => ({ ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }),
      delta: (text: string) => ({ ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }] }),
      closing: (g: Served) => ({ ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: g.finishReason }], usage: usage(g) }),
    };
  }
  return {
    complete: (g: Served) => ({
      ...head,
      object: "text_completion",
      choices: [{ index: 0, text: g.text, logprobs: null, finish_reason: g.finishReason }],
      usage: usage(g),
    }),
    opening: undefined,
    delta: (text: string) => ({ ...head, object: "text_completion", choices: [{ index: 0, text, logprobs: null, finish_reason: null }] }),
    closing: (g: Served) => ({ ...head, object: "text_completion", choices: [{ index: 0, text: "", logprobs: null, finish_reason: g.finishReason }], usage: usage(g) }),
  };
}

/** An AbortSignal that fires when the client goes away before its answer is written. */
function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new DOMException("the client disconnected", "AbortError"));
  });
  return controller.signal;
}

async function respond(ctx: AppContext, kind: Kind, parsed: ParsedRequest, request: FastifyRequest, reply: FastifyReply) {
  const startedAt = performance.now();
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`;
  // Responses name the model that served them, never an echo of the request's text.
  const shape = shapes(kind, id, Math.floor(Date.now() / 1000), ctx.modelId);
  const signal = disconnectSignal(reply);
  let firstBlock = true;
  const onFirstBlock = (worker: number) => {
    if (firstBlock) ctx.metrics.firstBlock(worker, startedAt);
    firstBlock = false;
  };

  if (!parsed.stream) {
    const g = await ctx.server.generate(parsed.input, { ...parsed.options, signal }, (e) => onFirstBlock(e.worker));
    ctx.metrics.served(g, startedAt);
    return shape.complete(g);
  }

  const events = ctx.server.stream(parsed.input, { ...parsed.options, signal });
  // Wait for the first event before answering 200: a request the worker refuses still gets a plain 4xx.
  const first = await events.next();
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const send = (data: unknown) => out.write(`data: ${JSON.stringify(data)}\n\n`);
  if (shape.opening) send(shape.opening());
  try {
    for (let next = first; !next.done; next = await events.next()) {
      const event = next.value;
      if (event.type === "block") {
        onFirstBlock(event.worker);
        send(shape.delta(event.delta));
      } else {
        ctx.metrics.served(event.generation, startedAt);
        send(shape.closing(event.generation));
      }
    }
  } catch (err) {
    const apiError = toApiError(err);
    ctx.metrics.failed(apiError.type);
    if (apiError.status !== 499) request.log.warn({ err }, "stream failed");
    send(apiError.body());
  }
  out.end("data: [DONE]\n\n");
}

export function openaiRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post("/v1/chat/completions", (request, reply) =>
    respond(ctx, "chat", parseChatRequest(request.body, requestDefaults(ctx)), request, reply),
  );
  app.post("/v1/completions", (request, reply) =>
    respond(ctx, "text", parseCompletionRequest(request.body, requestDefaults(ctx)), request, reply),
  );
  app.get("/v1/models", async () => ({
    object: "list",
    data: [{ id: ctx.modelId, object: "model", created: 0, owned_by: "dllm-serve", max_model_len: ctx.server.info?.maxSequenceLength }],
  }));
}
