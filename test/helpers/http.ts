// A real HTTP server on a real socket (port 0) over real worker threads, for the HTTP suites.
import { DllmServer, type ServerOptions } from "../../dist/api/server.js";
import { buildApp, closeApp, type AppOptions } from "../../dist/http/app.js";

export interface Running {
  url: string;
  server: DllmServer;
  close(): Promise<void>;
}

export async function startHttp(
  server: Partial<ServerOptions> & { modelPath: string },
  app: Partial<AppOptions> = {},
  { waitReady = true } = {},
): Promise<Running> {
  const dllm = new DllmServer({ workers: 1, batchSize: 4, maxWaitMs: 10, ...server });
  const fastify = buildApp({ server: dllm, modelId: "tiny", ...app });
  const url = await fastify.listen({ host: "127.0.0.1", port: 0 });
  if (waitReady) await dllm.ready();
  return {
    url,
    server: dllm,
    close: async () => {
      await closeApp(fastify, dllm.close());
    },
  };
}

/** A JSON body as the suites read it: any shape, field by field, with their assertions checking what is there. */
export type Json = any;

/** A response's JSON body. */
export async function readJson(res: Response): Promise<Json> {
  return res.json();
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await readJson(res) };
}
