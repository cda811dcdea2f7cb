/** The loading, error and forbidden states every view shows the same way. */
import { ApiError } from '../api.js';

export function Loading() {
  return (
    <p role="status" class="status">
      Loading…
    </p>
  );
}

/** A 403: the key is known but may not do this; signing in again would not help. */
function Forbidden({ error }: { error: ApiError }) {
  const scope = error.missingScope;
  return (
    <div role="alert" class="forbidden">
      <h2>Not allowed</h2>
      <p>
        {scope ? (
          <>
            This key lacks the <strong>{scope}</strong> scope.
          </>
        ) : (
          `This key may not do this: ${error.message}.`
        )}{' '}
        Ask for a key with it, or sign in with another key.
      </p>
    </div>
  );
}

export function Failure({ error }: { error: Error }) {
  if (error instanceof ApiError && error.status === 403) return <Forbidden error={error} />;
  return (
    <p role="alert" class="error">
      {error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : error.message}
    </p>
  );
}
