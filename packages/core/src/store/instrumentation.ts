/**
 * Hooks a store calls as it works, so that a server can export metrics (or a tracer spans)
 * without the library depending on any metrics package. Each hook must be fast and must not
 * throw: an error thrown by one is swallowed, never the caller's.
 */

/** What one coalesced database call of appends carried. */
export interface AppendBatchReport {
  /** Appends (callers) in the call. */
  appends: number;
  /** Events in the call. */
  events: number;
  durationMs: number;
  /** The whole call failed (its appends are then retried one by one, or fail). */
  failed: boolean;
}

/** How one caller's append ended. */
export interface AppendReport {
  outcome: 'ok' | 'duplicate' | 'conflict' | 'error';
  /** Events it asked to append. */
  events: number;
  /** From the call to its answer, waiting for a batch included. */
  durationMs: number;
}

/** Options of `openEventStore({ instrumentation })`. */
export interface StoreInstrumentation {
  onAppendBatch?(batch: AppendBatchReport): void;
  onAppend?(append: AppendReport): void;
}

/** Calls a hook, swallowing whatever it throws. */
export function report<T>(hook: ((value: T) => void) | undefined, value: T): void {
  if (!hook) return;
  try {
    hook(value);
  } catch {
    // A metrics hook must never fail an append.
  }
}
