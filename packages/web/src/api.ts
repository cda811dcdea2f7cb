/**
 * The server's HTTP API as the UI uses it: typed JSON calls with the signed-in key, problems
 * as errors. A 401 also shows the sign-in view (auth.ts).
 */
import { authHeaders, challenge } from './auth.js';

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

/** One difference between two states, as the server computes it (microdiff's shape). */
export type Difference =
  | { type: 'CREATE'; path: (string | number)[]; value: unknown }
  | { type: 'REMOVE'; path: (string | number)[]; oldValue: unknown }
  | { type: 'CHANGE'; path: (string | number)[]; value: unknown; oldValue: unknown };

/** One step of a stream's replay: an event with the state before and after it. */
export interface ReplayStep {
  event: RecordedEvent;
  before: unknown;
  after: unknown;
  changes: Difference[];
}

/** A stream's state as of a moment, and the last event it includes. */
export interface StateAt {
  streamId: string;
  state: unknown;
  streamVersion: number;
  position: number;
  recordedAt: string;
}

/** What changed in the log between two moments. */
export interface Changes {
  fromPosition: number;
  toPosition: number;
  events: RecordedEvent[];
  streams: { streamId: string; before: unknown; after: unknown; changes: Difference[] }[];
}

/** A durable subscription's or projection's stored position with its lag. */
export interface CheckpointStatus {
  name: string;
  position: number;
  updatedAt: string;
  lag: number;
  lagSeconds: number;
  parked: number;
  /** The error of the event it parked most recently (null when none is parked). */
  lastError?: { error: string; parkedAt: string } | null;
}

/** An app's projection and its last rebuild started over HTTP (`GET /projections/<name>/rebuild`). */
export interface RebuildProgress {
  name: string;
  version: number;
  state: 'idle' | 'running' | 'done' | 'failed';
  position: number | null;
  /** The head of the log when the rebuild started. */
  target: number | null;
  eventsPerSecond: number | null;
  etaSeconds: number | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ParkedEvent {
  subscription: string;
  position: number;
  eventId: string;
  attempts: number;
  error: string;
  parkedAt: string;
}

export interface SealStatus {
  sealedUpTo: number;
  head: number;
  unsealed: number;
}

export interface BrokenLink {
  position: number;
  streamId: string;
  streamVersion: number;
  eventId: string | null;
  problem: string;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  checked: number;
  sealedUpTo: number;
  unsealed: number;
  broken: BrokenLink[];
  brokenCount: number;
  lostKeys: string[];
  headHash: string | null;
}

/** What forgetting a data subject did (`POST /subjects/<id>/forget`). */
export interface ForgetResult {
  /** False when the subject had no key (never seen, or already forgotten): nothing was recorded. */
  forgotten: boolean;
  /** Events holding the subject's personal data, now redacted. */
  events: number;
  snapshotsDropped: number;
  /** Position of the recorded `SubjectForgotten` event. */
  position: number | null;
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

  /** For a 403 that says so: the scope the key lacks ('read', 'subscribe', ...). */
  get missingScope(): string | undefined {
    return this.status === 403 ? /lacks the "?([a-z]+)"? scope/.exec(this.message)?.[1] : undefined;
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

/** The problem of a failed answer, as an error. */
export async function problemOf(response: Response): Promise<ApiError> {
  try {
    const problem = (await response.json()) as { code?: string; detail?: string };
    return new ApiError(response.status, problem.code ?? 'HTTP_ERROR', problem.detail ?? response.statusText);
  } catch {
    return new ApiError(response.status, 'HTTP_ERROR', `${response.status} ${response.statusText}`);
  }
}

/** The problem of a failed answer; a 401 also asks the user to sign in. */
export async function failure(response: Response): Promise<ApiError> {
  const error = await problemOf(response);
  if (error.status === 401) challenge(error.message);
  return error;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json', ...authHeaders() }, signal });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(path, { headers: authHeaders(), signal });
  if (!response.ok) throw await failure(response);
  return response.text();
}

/**
 * Whether the server takes `key`: resolves when it does (a 403 too: the key is known, it only
 * lacks the read scope), rejects with the server's problem (401: unknown, revoked, expired).
 */
export async function checkKey(key: string, signal?: AbortSignal): Promise<void> {
  // A header can only hold visible ASCII here; fetch would refuse anything else anyway.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new ApiError(0, 'INVALID_KEY', 'That is not an API key: they look like ank_…, without spaces.');
  }
  const response = await fetch('/position', {
    headers: { accept: 'application/json', authorization: `Bearer ${key}` },
    signal,
  });
  if (response.ok || response.status === 403) return;
  throw await problemOf(response);
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
  seals: (signal?: AbortSignal) => getJson<SealStatus>('/seals', signal),
  verify: (signal?: AbortSignal) => postJson<VerifyReport>('/verify', {}, signal),
  /** The steps of `id` from `fromVersion` to `toVersion` (inclusive). */
  replay: (id: string, range: { fromVersion: number; toVersion: number; decider?: string }, signal?: AbortSignal) =>
    getJson<{ steps: ReplayStep[] }>(`/streams/${encodeURIComponent(id)}/replay${query(range)}`, signal),
  stateAt: (id: string, at: { version?: number; time?: string; decider?: string }, signal?: AbortSignal) =>
    getJson<StateAt>(`/streams/${encodeURIComponent(id)}/state${query(at)}`, signal),
  /** The app's deciders by name; `default` (null: merged data) is what a state folds with without `decider`. */
  deciders: (signal?: AbortSignal) =>
    getJson<{ deciders: { name: string }[]; default: string | null }>('/deciders', signal),
  changes: (range: { from: string; to: string; category?: string[] }, signal?: AbortSignal) =>
    getJson<Changes>(`/changes${query(range)}`, signal),
  byActor: (actor: string, range: { from?: string; to?: string; limit?: number }, signal?: AbortSignal) =>
    getJson<{ events: RecordedEvent[] }>(`/audit/actors/${encodeURIComponent(actor)}${query(range)}`, signal),
  bySubject: (subjectId: string, signal?: AbortSignal) =>
    getJson<{ events: RecordedEvent[] }>(`/audit/subjects/${encodeURIComponent(subjectId)}`, signal),
  forget: (subjectId: string, reason: string, signal?: AbortSignal) =>
    postJson<ForgetResult>(`/subjects/${encodeURIComponent(subjectId)}/forget`, { reason }, signal),
  checkpoints: (signal?: AbortSignal) => getJson<{ checkpoints: CheckpointStatus[] }>('/checkpoints', signal),
  parked: (name: string, signal?: AbortSignal) =>
    getJson<{ parked: ParkedEvent[] }>(`/subscriptions/${encodeURIComponent(name)}/parked`, signal),
  /** The app's projections, each with its last rebuild. */
  projections: (signal?: AbortSignal) => getJson<{ projections: RebuildProgress[] }>('/projections', signal),
  rebuild: (name: string, signal?: AbortSignal) =>
    postJson<RebuildProgress>(`/projections/${encodeURIComponent(name)}/rebuild`, {}, signal),
  replayParked: (name: string, signal?: AbortSignal) =>
    postJson<{ replayed: number; failed: number }>(
      `/subscriptions/${encodeURIComponent(name)}/parked/replay`,
      {},
      signal,
    ),
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
