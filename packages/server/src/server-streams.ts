/**
 * Streams the server writes itself, through its own APIs only: a caller's append to one of
 * them (over HTTP or gRPC, whatever its scopes) is refused, so what they hold stays what
 * those APIs decided (`$persistent-subscriptions`: the groups' definitions, made by admins).
 */
import { InvalidInputError } from '@annals/core';

/** The stream persistent subscription groups are defined in (grpc/persistent/registry.ts). */
export const persistentSubscriptionsStream = '$persistent-subscriptions';

const owned = new Map([[persistentSubscriptionsStream, 'the persistent subscriptions API']]);

/** Refuses an append by a caller to a stream the server writes itself. */
export function assertAppendable(streamId: string, field = 'streamId'): void {
  const api = owned.get(streamId);
  if (api) throw new InvalidInputError(field, `${streamId} is written only through ${api}`);
}
