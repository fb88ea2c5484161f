/**
 * Typed conversation events: the `ConverseResponse` oneof as a discriminated union.
 *
 *     for await (const event of conversation) {
 *       switch (event.case) {
 *         case "audio": speaker.play(event.value.audio); break;
 *         case "transcript": console.log(event.value.role, event.value.text); break;
 *       }
 *     }
 *
 * Derived from the generated code, so a message kind added to the proto becomes an event
 * without a change here; kinds from a newer server that this build does not know are skipped.
 */
import type { ConverseResponse } from "./gen/sonicwire/v1/voice_service_pb.js";

/** One server event: `{ case: "transcript", value: Transcript }`, `{ case: "audio", ... }`, ... */
export type ConverseEvent = Exclude<ConverseResponse["response"], { case: undefined }>;

/** The kinds of event: "sessionStarted", "audio", "transcript", "toolCall", ... */
export type EventKind = ConverseEvent["case"];

/** The event of one kind, e.g. `EventOf<"turnComplete">`. */
export type EventOf<K extends EventKind> = Extract<ConverseEvent, { case: K }>;

/** The event carried by a response, or undefined for an empty or unknown oneof. */
export function eventFromResponse(response: ConverseResponse): ConverseEvent | undefined {
  return response.response.case === undefined ? undefined : response.response;
}
