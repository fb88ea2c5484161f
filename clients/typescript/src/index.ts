/**
 * Sonicwire's typed Node.js client: the generated `sonicwire.v1` messages (protoc-gen-es) plus
 * a thin layer for what generation cannot express: the stream's rules (config first, pacing,
 * playback reports, tool results), typed events and typed errors with their `ErrorInfo` reason.
 */
export * from "./audio.js";
export * from "./client.js";
export * from "./conversation.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./retry.js";
export * from "./talk.js";
export * from "./tools.js";
export * as pb from "./gen/sonicwire/v1/voice_service_pb.js";
/** google.rpc error details (`ErrorInfoSchema`, ...), for `ConnectError.findDetails`. */
export * as rpc from "./gen/google/rpc/error_details_pb.js";
export {
  AudioEncoding,
  InterruptionSource,
  Role,
  SpeechActivityKind,
  StopReason,
  ToolExecutor,
  ToolStatus,
} from "./gen/sonicwire/v1/voice_service_pb.js";
