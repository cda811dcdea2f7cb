/**
 * Expected versions: what an append expects of its stream, and how the SQL function
 * `append_events` (sql/0001_event_store.sql) receives it — one number per write, named here
 * once: a version >= 0 is that exact version, the negative codes are the named cases.
 * `encodeExpectedVersion` in validation.ts checks a caller's value and encodes it.
 */
/** The codes `append_events` takes for the named expected versions (its SQL uses the same numbers). */
export const expectedVersionCode = Object.freeze({
  any: -1,
  'no-stream': -2,
  'stream-exists': -3,
} as const);

/** Whether a stream at version `actual` satisfies an encoded expected version. */
export function satisfiesExpectedVersion(code: number, actual: number): boolean {
  switch (code) {
    case expectedVersionCode.any:
      return true;
    case expectedVersionCode['no-stream']:
      return actual === 0;
    case expectedVersionCode['stream-exists']:
      return actual > 0;
    default:
      return actual === code;
  }
}
