// POST /v1/chat/completions, POST /v1/completions (streamed as server-sent events, one chunk per committed
// block up to the one that completes the answer), GET /v1/models. A request's choices (n per prompt; /v1/completions takes a list of prompts) are
// separate generations that the workers batch like any others.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { RequestGroup } from "../../api/request-group.js";
import type { StreamEvent } from "../../api/server.js";
import type { Served } from "../../cluster/router.js";
import { choicesOf, interleave, usage, type Choice, type Finished } from "../choices.js";
import { ApiError, toApiError } from "../errors.js";
import { requestDefaults, type AppContext } from "../context.js";
import { parseChatRequest, parseCompletionRequest, type ParsedRequest } from "../request.js";

type Kind = "chat" | "text";

/**
 * The shapes of one endpoint's responses and stream chunks; every choice carries its index. With includeUsage
 * (stream_options.include_usage) every chunk has `usage: null` and the usage chunk ends the stream, as OpenAI's.
 */
function shapes(kind: Kind, id: string, created: number, model: string, includeUsage: boolean) {
  const head = { id, created, model };
  const chat = kind === "chat";
  const object = chat ? "chat.completion" : "text_completion";
  const chunk = (choices: unknown[], usageOf: ReturnType<typeof usage> | null = null) => ({
    ...head,
    object: chat ? "chat.completion.chunk" : "text_completion",
    choices,
    ...(includeUsage ? { usage: usageOf } : {}),
  });
  return {
    complete: (finished: Finished[], usageOf: ReturnType<typeof usage>) => ({
      ...head,
      object,
      choices: finished.map(({ choice, g }) =>
        chat
          ? { index: choice.index, message: { role: "assistant", content: g.text }, logprobs: null, finish_reason: g.finishReason }
          : { index: choice.index, text: g.text, logprobs: null, finish_reason: g.finishReason },
      ),
      usage: usageOf,
    }),
    opening: chat
      ? (index: number) => chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }])
      : undefined,
    delta: (index: number, text: string) =>
      chunk([chat ? { index, delta: { content: text }, logprobs: null, finish_reason: null } : { index, text, logprobs: null, finish_reason: null }]),
    closing: (index: number, g: Served) =>
      chunk([chat ? { index, delta: {}, logprobs: null, finish_reason: g.finishReason } : { index, text: "", logprobs: null, finish_reason: g.finishReason }]),
    usage: (usageOf: ReturnType<typeof usage>) => chunk([], usageOf),
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
  const shape = shapes(kind, id, Math.floor(Date.now() / 1000), ctx.modelId, parsed.includeUsage);
  const choices = choicesOf(parsed);
  // One choice failing ends the others: the request is answered with its error.
  const group = new RequestGroup(disconnectSignal(reply));
  const signal = group.signal;
  let firstBlock = true;
  const onFirstBlock = (worker: number) => {
    if (firstBlock) ctx.metrics.firstBlock(worker, startedAt);
    firstBlock = false;
  };
  const served = (choice: Choice, g: Served): Finished => {
    ctx.metrics.served(g, startedAt);
    return { choice, g };
  };

  // The choices are admitted to the queue whole or not at all: each is submitted below in this same tick, so the
  // room checked here is the room they take.
  ctx.server.admit(choices.length);
  if (!parsed.stream) {
    const finished = await Promise.all(
      choices.map(async (choice) => {
        const options = { ...parsed.options, seed: choice.seed, signal };
        return served(choice, await group.member(ctx.server.generate(choice.input, options, (e) => onFirstBlock(e.worker))));
      }),
    );
    return shape.complete(finished, usage(finished, parsed.n));
  }

  const streams = choices.map((choice) => ({ choice, events: ctx.server.stream(choice.input, { ...parsed.options, seed: choice.seed, signal }) }));
  const close = () => {
    group.cancel(new DOMException("the request failed", "AbortError"));
    for (const s of streams) s.events.return(undefined).catch(() => {});
  };
  // Wait until a worker has accepted every choice before answering 200: a request the workers refuse still gets a
  // plain 4xx, and the 200 does not wait for any choice's first block.
  let firsts: Array<IteratorResult<StreamEvent>>;
  try {
    firsts = await Promise.all(streams.map((s) => s.events.next()));
  } catch (err) {
    close();
    throw err;
  }
  reply.hijack();
  const out = reply.raw;
  // What the hooks set (CORS) goes out too: hijacking skips fastify's own writing of them.
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) out.setHeader(name, value);
  // No Connection header: Node decides (a client's or a draining server's `close`, else keep-alive).
  out.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });
  const send = (data: unknown) => out.write(`data: ${JSON.stringify(data)}\n\n`);
  if (shape.opening) for (const { choice } of streams) send(shape.opening(choice.index));
  const finished: Finished[] = [];
  try {
    // Blocks of one choice stay in order; choices interleave.
    for await (const { k, value: event } of interleave(streams.map((s) => s.events), firsts)) {
      const { choice } = streams[k];
      if (event.type === "accepted") continue;
      if (event.type === "block") {
        onFirstBlock(event.worker);
        send(shape.delta(choice.index, event.delta));
      } else {
        finished.push(served(choice, event.generation));
        send(shape.closing(choice.index, event.generation));
      }
    }
    if (parsed.includeUsage) send(shape.usage(usage(finished, parsed.n)));
  } catch (err) {
    close();
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
  const model = () => ({ id: ctx.modelId, object: "model", created: 0, owned_by: "dllm-serve", max_model_len: ctx.server.info?.maxSequenceLength });
  app.get("/v1/models", async () => ({ object: "list", data: [model()] }));
  // The openai client's models.retrieve(id). Ids may hold slashes (GSAI-ML/LLaDA-8B-Instruct), sent as they
  // are or, as the client sends them, as %2F.
  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request) => {
    const id = request.params["*"];
    if (id !== ctx.modelId) {
      throw new ApiError(404, `the model '${id}' does not exist; this server serves '${ctx.modelId}'`, "not_found_error", "model", "model_not_found");
    }
    return model();
  });
}
