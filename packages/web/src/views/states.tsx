/** The loading and error states every view shows the same way. */
import { ApiError } from '../api.js';

export function Loading() {
  return (
    <p role="status" class="status">
      Loading…
    </p>
  );
}

export function Failure({ error }: { error: Error }) {
  return (
    <p role="alert" class="error">
      {error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : error.message}
    </p>
  );
}
