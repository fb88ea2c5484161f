/**
 * The Sonicwire client: one HTTP/2 connection (gRPC protocol, via connect-node) to a server.
 *
 *     const client = new Client("voice.internal:50051", { apiKey: "…" });
 *     const conversation = await client.converse(sessionConfig({ sampleRateHz: 16000 }));
 *     for await (const event of conversation) { ... }
 *     client.close();
 */
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { type Transport, createClient, type Client as RpcClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

import { Conversation } from "./conversation.js";
import { errorFromStatus } from "./errors.js";
import {
  AudioEncoding,
  AudioFormatSchema,
  type ListToolsResponse,
  type ListVoicesResponse,
  type SessionConfig,
  SessionConfigSchema,
  VoiceService,
} from "./gen/sonicwire/v1/voice_service_pb.js";
import { DEFAULT_RETRY, type RetryPolicy, withRetries } from "./retry.js";
import { type ClientTool, type ToolHandler, declareTools } from "./tools.js";

/** Server verification and, for mutual TLS, the client's certificate (PEM). */
export interface TlsOptions {
  /** CA certificate(s) to verify the server with; default the system's roots. */
  ca?: string | Buffer;
  /** Client certificate chain for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key for mutual TLS. */
  key?: string | Buffer;
  /** Name to verify in the server's certificate when it differs from the target's host. */
  serverName?: string;
}

export interface ClientOptions {
  /** Sent as `x-api-key` metadata on every call. */
  apiKey?: string;
  /** TLS options, `true` for TLS with the system roots, `false` for plaintext. Default:
   * plaintext for loopback targets (127.0.0.0/8, ::1, localhost), TLS otherwise. */
  tls?: TlsOptions | boolean;
  /** Deadline of unary calls and of the wait for `SessionStarted`; default 10 s. */
  timeoutMs?: number;
  /** Retries of UNAVAILABLE while connecting; `NO_RETRY` disables them. */
  retry?: RetryPolicy;
  /** Extra metadata sent on every call. */
  headers?: Readonly<Record<string, string>>;
}

export interface ConverseOptions {
  /** Client tools by name: declared in the config and answered automatically. */
  tools?: Readonly<Record<string, ClientTool | ToolHandler>>;
  /** A deadline on the whole stream, in ms; default none. */
  streamTimeoutMs?: number;
}

/** Options of {@link sessionConfig}; everything else can be set on the returned message. */
export interface SessionConfigOptions {
  /** Input (microphone) sample rate; default 16000. */
  sampleRateHz?: number;
  /** Output (assistant) sample rate; 0 for the server default. */
  outputSampleRateHz?: number;
  /** Voice id (see `listVoices`); "" for the backend default. */
  voice?: string;
  /** System prompt; "" for the server default. */
  systemPrompt?: string;
}

/** A `SessionConfig` for PCM s16le mono input, plus any other fields given in `extra`. */
export function sessionConfig(
  options: SessionConfigOptions = {},
  extra: MessageInitShape<typeof SessionConfigSchema> = {},
): SessionConfig {
  const pcm = AudioEncoding.PCM_S16LE;
  const config = create(SessionConfigSchema, extra);
  config.inputFormat = create(AudioFormatSchema, {
    encoding: pcm,
    sampleRateHz: options.sampleRateHz ?? 16000,
    channels: 1,
  });
  if (options.outputSampleRateHz) {
    config.outputFormat = create(AudioFormatSchema, {
      encoding: pcm,
      sampleRateHz: options.outputSampleRateHz,
      channels: 1,
    });
  }
  config.voice = options.voice ?? config.voice;
  config.systemPrompt = options.systemPrompt ?? config.systemPrompt;
  return config;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || host.startsWith("127.");
}

/** Split "host:port" (or "[v6]:port", or a URL) into a base URL for the transport. */
export function baseUrl(target: string, tls: boolean): string {
  if (/^https?:\/\//.test(target)) {
    return target;
  }
  return `${tls ? "https" : "http"}://${target}`;
}

export class Client {
  readonly target: string;
  private readonly sessions: Http2SessionManager;
  private readonly rpc: RpcClient<typeof VoiceService>;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;

  /**
   * @param target `host:port` of the server (default `127.0.0.1:50051`), or an
   *   `http://`/`https://` URL.
   */
  constructor(target = "127.0.0.1:50051", options: ClientOptions = {}) {
    this.target = target;
    const host = new URL(baseUrl(target, false)).hostname;
    const tlsOption = options.tls ?? (/^https:/.test(target) || !isLoopback(host));
    const tls = tlsOption === false ? undefined : tlsOption === true ? {} : tlsOption;
    const url = baseUrl(target, tls !== undefined);
    const nodeOptions =
      tls === undefined
        ? {}
        : { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName };
    // Our own session manager so close() can end the HTTP/2 connection (and let Node exit).
    this.sessions = new Http2SessionManager(url, {}, nodeOptions);
    const transport: Transport = createGrpcTransport({
      baseUrl: url,
      sessionManager: this.sessions,
    });
    this.rpc = createClient(VoiceService, transport);
    this.headers = { ...(options.headers ?? {}) };
    if (options.apiKey) {
      this.headers["x-api-key"] = options.apiKey;
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  private async unary<T>(call: (timeoutMs: number) => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.timeoutMs;
    return withRetries(this.retry, deadline, async () => {
      try {
        return await call(Math.max(Math.floor(deadline - performance.now()), 1));
      } catch (error) {
        throw errorFromStatus(error);
      }
    });
  }

  /** The voices of `backend` ("" for the server's configured backend). */
  async listVoices(backend = ""): Promise<ListVoicesResponse["voices"]> {
    const reply = await this.unary((timeoutMs) =>
      this.rpc.listVoices({ backend }, { headers: this.headers, timeoutMs }),
    );
    return reply.voices;
  }

  /** The server-side tools a session can use. */
  async listTools(): Promise<ListToolsResponse["tools"]> {
    const reply = await this.unary((timeoutMs) =>
      this.rpc.listTools({}, { headers: this.headers, timeoutMs }),
    );
    return reply.tools;
  }

  /**
   * Open a conversation: the stream is open, `config` sent and `SessionStarted` received when
   * the promise resolves. Iterate the result for events; `close()` it when done.
   */
  async converse(
    config: SessionConfig = sessionConfig(),
    options: ConverseOptions = {},
  ): Promise<Conversation> {
    const declared = declareTools(config, options.tools ?? {});
    const conversation = new Conversation(
      (requests, signal) =>
        this.rpc.converse(requests, {
          headers: this.headers,
          signal,
          timeoutMs: options.streamTimeoutMs,
        }),
      declared.config,
      { tools: declared.tools, retry: this.retry, startTimeoutMs: this.timeoutMs },
    );
    await conversation.start();
    return conversation;
  }

  /** Close the connection; calls still running fail. */
  close(): void {
    this.sessions.abort();
  }
}
