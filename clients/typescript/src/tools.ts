/**
 * Client-side tools: functions the model can call that run in *your* process.
 *
 * Pass them to `client.converse(config, { tools })`: each is declared in
 * `SessionConfig.client_tools`, and every `ToolCall` for it (executor CLIENT) is answered
 * automatically with a `ToolResult`. A handler takes the parsed arguments and returns (or
 * resolves to) the result: a string is sent as is, anything else as JSON. A thrown error becomes
 * an error result (`isError`) carrying `{"error": "<name>: <message>"}`.
 */
import { clone, create } from "@bufbuild/protobuf";

import {
  type SessionConfig,
  SessionConfigSchema,
  type ToolDefinition,
  ToolDefinitionSchema,
} from "./gen/sonicwire/v1/voice_service_pb.js";

/** A tool implementation: takes the arguments object, returns (or resolves to) the result. */
export type ToolHandler = (args: Record<string, unknown>) => unknown;

/** A client-side tool: its handler plus what the model is told about it. */
export interface ClientTool {
  handler: ToolHandler;
  /** What the tool does, for the model. */
  description?: string;
  /** JSON schema (an object schema) of the arguments; default `{"type": "object"}`. */
  parameters?: Record<string, unknown>;
  /** How long the server waits for the result; 0 or absent for the server default. */
  timeoutMs?: number;
  /** How users ask for it, with `{property}` slots, for the offline engine (`ToolDefinition.examples`). */
  examples?: readonly string[];
  /** How the offline engine speaks the result, e.g. "In {city} it is {forecast}.". */
  answerTemplate?: string;
}

const NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/;

/** The `ToolDefinition` declaring `tool` as `name`. @throws RangeError for an invalid name. */
export function toolDefinition(name: string, tool: ClientTool): ToolDefinition {
  if (!NAME.test(name)) {
    throw new RangeError(
      `invalid tool name ${JSON.stringify(name)}: use a letter then up to 63 letters, digits, _ or -`,
    );
  }
  return create(ToolDefinitionSchema, {
    name,
    description: tool.description ?? "",
    parametersJsonSchema: JSON.stringify(tool.parameters ?? { type: "object" }),
    timeoutMs: tool.timeoutMs ?? 0,
    examples: [...(tool.examples ?? [])],
    answerTemplate: tool.answerTemplate ?? "",
  });
}

/**
 * Declare `tools` in a copy of `config`. A tool already declared under the same name keeps its
 * declaration (a hand-written schema wins); the others are appended.
 */
export function declareTools(
  config: SessionConfig,
  tools: Readonly<Record<string, ClientTool | ToolHandler>>,
): { config: SessionConfig; tools: Map<string, ClientTool> } {
  const result = clone(SessionConfigSchema, config);
  const declared = new Set(result.clientTools.map((tool) => tool.name));
  const resolved = new Map<string, ClientTool>();
  for (const [name, entry] of Object.entries(tools)) {
    const tool = typeof entry === "function" ? { handler: entry } : entry;
    const definition = toolDefinition(name, tool);
    resolved.set(name, tool);
    if (!declared.has(name)) {
      result.clientTools.push(definition);
    }
  }
  return { config: result, tools: resolved };
}

/** Run a handler and encode its outcome for a `ToolResult`: `[content, isError]`. */
export async function runTool(tool: ClientTool, argumentsJson: string): Promise<[string, boolean]> {
  try {
    const parsed: unknown = argumentsJson ? JSON.parse(argumentsJson) : {};
    const args = parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
    const value = await tool.handler(args);
    return [typeof value === "string" ? value : JSON.stringify(value ?? null), false];
  } catch (error) {
    // The model should hear about any failure rather than the stream dying.
    const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return [JSON.stringify({ error: described }), true];
  }
}
