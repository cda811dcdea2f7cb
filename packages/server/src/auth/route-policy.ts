/**
 * What each route needs, in one table: the scope, and how a principal restricted to some
 * stream categories is held to them. A route missing here makes the server refuse to start,
 * so no route is ever served unguarded by accident.
 *
 * Category policies:
 * - `stream`: the `:streamId` parameter's category must be allowed;
 * - `writes`: every write of the body (`/appends`) must be to an allowed stream;
 * - `query`: the `category` and `stream` filters must be allowed; without a `category`
 *   filter the route reads the allowed categories only;
 * - `category`: the one `category` filter must be allowed; without it, the principal's only
 *   category (a principal of several must name one);
 * - `results`: the route drops what is not in an allowed category (events by id, audit);
 * - `unrestricted`: only principals restricted to no category may use it;
 * - `none`: the route shows nothing of any stream.
 */
import type { Scope } from './principal.js';

export type CategoryPolicy = 'stream' | 'writes' | 'query' | 'category' | 'results' | 'unrestricted' | 'none';

export interface RoutePolicy {
  scope: Scope;
  categories: CategoryPolicy;
}

const policy = (scope: Scope, categories: CategoryPolicy): RoutePolicy => ({ scope, categories });

/** Routes anyone may call: health, metrics, the API's description, the UI's files. */
export const publicRoutes: ReadonlySet<string> = new Set([
  'GET /health/live',
  'GET /health/ready',
  'GET /metrics',
  'GET /openapi.json',
  'GET /ui',
  'GET /ui/*',
  'HEAD /ui',
  'HEAD /ui/*',
]);

/** `METHOD /route` → what it needs. */
export const routePolicies: Readonly<Record<string, RoutePolicy>> = {
  'GET /streams': policy('read', 'category'),
  'GET /streams/:streamId': policy('read', 'stream'),
  'GET /streams/:streamId/events': policy('read', 'stream'),
  'GET /events': policy('read', 'query'),
  'GET /events/:eventId': policy('read', 'results'),
  'GET /position': policy('read', 'none'),
  'GET /seals': policy('read', 'none'),
  'GET /checkpoints': policy('read', 'none'),
  'GET /audit/actors/:actor': policy('read', 'results'),
  'GET /audit/correlations/:correlationId': policy('read', 'results'),
  'GET /audit/range': policy('read', 'query'),
  'GET /changes': policy('read', 'query'),
  'GET /streams/:streamId/history': policy('read', 'stream'),
  'GET /streams/:streamId/replay': policy('read', 'stream'),
  'GET /streams/:streamId/state': policy('read', 'stream'),
  'GET /deciders': policy('read', 'none'),
  'GET /subscribe': policy('subscribe', 'query'),
  'GET /streams/:streamId/subscribe': policy('subscribe', 'stream'),
  'POST /streams/:streamId/events': policy('append', 'stream'),
  'POST /appends': policy('append', 'writes'),
  'POST /commands/:decider/:streamId': policy('append', 'stream'),
  'PUT /streams/:streamId/metadata': policy('append', 'stream'),
  'DELETE /streams/:streamId': policy('admin', 'stream'),
  'POST /streams/:streamId/archive': policy('admin', 'stream'),
  'POST /streams/:streamId/unarchive': policy('admin', 'stream'),
  'PUT /streams/:streamId/retention': policy('admin', 'stream'),
  'GET /audit/subjects/:subjectId': policy('admin', 'unrestricted'),
  'POST /subjects/:subjectId/forget': policy('admin', 'unrestricted'),
  'GET /subscriptions/:name/parked': policy('admin', 'unrestricted'),
  'POST /subscriptions/:name/parked/replay': policy('admin', 'unrestricted'),
  'POST /verify': policy('admin', 'unrestricted'),
  'GET /projections': policy('read', 'none'),
  'GET /projections/:name/rebuild': policy('read', 'none'),
  'POST /projections/:name/rebuild': policy('admin', 'unrestricted'),
  'GET /log/holders': policy('admin', 'none'),
  'GET /keys': policy('admin', 'unrestricted'),
  'POST /keys': policy('admin', 'unrestricted'),
  'DELETE /keys/:keyId': policy('admin', 'unrestricted'),
};

/** The category of a stream id: up to its first `-` (as the store computes it). */
export const categoryOf = (streamId: string) => {
  const dash = streamId.indexOf('-');
  return dash === -1 ? streamId : streamId.slice(0, dash);
};
