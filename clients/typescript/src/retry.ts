/** Connection retries: only while connecting, never once a conversation has started. */
import { setTimeout as sleep } from "node:timers/promises";

import { UnavailableError } from "./errors.js";

/** Exponential backoff with jitter for UNAVAILABLE at connect. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 disables retries. Default 4. */
  maxAttempts: number;
  /** Delay before the second attempt; doubled for each further one. Default 250 ms. */
  initialDelayMs: number;
  /** Upper bound of one delay. Default 2000 ms. */
  maxDelayMs: number;
  /** Relative jitter, 0.2 for ±20 %. */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  initialDelayMs: 250,
  maxDelayMs: 2000,
  jitter: 0.2,
});

/** A policy that never retries. */
export const NO_RETRY: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY, maxAttempts: 1 });

/** The delay after failed attempt `attempt` (1-based). */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(policy.initialDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return base * (1 + policy.jitter * (2 * Math.random() - 1));
}

/**
 * Run `attemptOnce` until it succeeds, retrying only `UnavailableError` (nothing has reached
 * the service then) with backoff, within `policy.maxAttempts` and before `deadline` (ms, from
 * `performance.now()`).
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  deadline: number | undefined,
  attemptOnce: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptOnce(attempt);
    } catch (error) {
      if (!(error instanceof UnavailableError) || attempt >= policy.maxAttempts) {
        throw error;
      }
      const delay = retryDelayMs(policy, attempt);
      if (deadline !== undefined && performance.now() + delay >= deadline) {
        throw error;
      }
      await sleep(delay);
    }
  }
}

