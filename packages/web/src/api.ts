/** The server's HTTP API as the UI uses it: typed JSON calls, problems as errors. */

export interface RecordedEvent {
  position: number;
  streamId: string;
  streamVersion: number;
  id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  recordedAt: string;
  redacted?: string[];
}

export interface EventPage {
  events: RecordedEvent[];
  next: Record<string, number> | null;
}

export interface StreamInfo {
  streamId: string;
  version: number;
  exists: boolean;
  metadata: Record<string, unknown>;
  createdAt: string | null;
  lastEventAt: string | null;
  state: 'active' | 'deleted' | 'tombstoned' | 'archived';
}

export interface StreamSummary {
  streamId: string;
  version: number;
  lastPosition: number;
  lastEventAt: string;
  state: StreamInfo['state'];
}

export interface CausalNode {
  event: RecordedEvent;
  children: CausalNode[];
}

/** An answer of the server that is not a success: its RFC 9457 problem when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The query string of `params`, without the undefined ones; arrays repeat their key. */
export function query(params: Record<string, string | number | string[] | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function failure(response: Response): Promise<ApiError> {
  try {
    const problem = (await response.json()) as { code?: string; detail?: string };
    return new ApiError(response.status, problem.code ?? 'HTTP_ERROR', problem.detail ?? response.statusText);
  } catch {
    return new ApiError(response.status, 'HTTP_ERROR', `${response.status} ${response.statusText}`);
  }
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json' }, signal });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(path, { signal });
  if (!response.ok) throw await failure(response);
  return response.text();
}

export const api = {
  head: (signal?: AbortSignal) => getJson<{ position: number; head: number }>('/position', signal).then((p) => p.head),
  event: (id: string, signal?: AbortSignal) => getJson<RecordedEvent>(`/events/${encodeURIComponent(id)}`, signal),
  log: (after: number, limit: number, signal?: AbortSignal) =>
    getJson<EventPage>(`/events${query({ after, limit })}`, signal),
  stream: (id: string, signal?: AbortSignal) => getJson<StreamInfo>(`/streams/${encodeURIComponent(id)}`, signal),
  streamEvents: (
    id: string,
    options: { fromVersion?: number; limit: number; direction: 'forward' | 'backward' },
    signal?: AbortSignal,
  ) => getJson<EventPage>(`/streams/${encodeURIComponent(id)}/events${query(options)}`, signal),
  streams: (options: { category?: string; after?: string; limit?: number }, signal?: AbortSignal) =>
    getJson<{ streams: StreamSummary[]; next: { after: string } | null }>(`/streams${query(options)}`, signal),
  causalTree: (correlationId: string, signal?: AbortSignal) =>
    getJson<{ roots: CausalNode[] }>(`/audit/correlations/${encodeURIComponent(correlationId)}`, signal),
  metrics: (signal?: AbortSignal) => getText('/metrics', signal),
  seals: (signal?: AbortSignal) => getJson<{ sealedUpTo: number; head: number; unsealed: number }>('/seals', signal),
};

/** A stream's category: its id up to the first '-' ("account-42" is in "account"). */
export const categoryOf = (streamId: string) => streamId.split('-', 1)[0] ?? streamId;

/** The metadata of an event as who / when / why. */
export function auditOf(event: RecordedEvent) {
  const text = (key: string) => {
    const value = event.metadata[key];
    return typeof value === 'string' ? value : value === undefined ? undefined : JSON.stringify(value);
  };
  return {
    actor: text('actor'),
    reason: text('reason'),
    correlationId: text('correlationId'),
    causationId: text('causationId'),
  };
}
