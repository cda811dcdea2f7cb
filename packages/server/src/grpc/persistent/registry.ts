/**
 * The persistent subscription groups of a store, kept as events of its own log: the
 * `$persistent-subscriptions` stream holds `PersistentSubscriptionCreated`, `…Updated` and
 * `…Deleted`, each with who did it. The groups are the fold of that stream. Every change is
 * appended with the version the fold was made at, so two servers (or two calls) changing
 * groups at once cannot both win: the loser folds again and decides again.
 */
import { ConcurrencyError, type EventStore, type JsonObject } from '@annals/core';
import { persistentSubscriptionsStream } from '../../server-streams.js';
import { GrpcError } from '../errors.js';
import { type GroupSettings, type Source, type StartFrom, sourceName } from './settings.js';

/** The stream the definitions live in. */
export const registryStream = persistentSubscriptionsStream;

/** A group as defined now. */
export interface GroupDefinition {
  source: Source;
  group: string;
  settings: GroupSettings;
  /**
   * The position of the event that created it: part of the name of its checkpoint, so a group
   * deleted and created again begins afresh.
   */
  generation: number;
  /**
   * Where it begins without a checkpoint, fixed when it was created (an update keeps its
   * checkpoint, as KurrentDB resumes from it): `end` is the Created event's own position, so
   * what is appended after the create answered is delivered even before a consumer joins.
   * `floor`: a stream group's first revision.
   */
  start: GroupStart;
}

/** A group's beginning, resolved from its `startFrom` at creation. */
export interface GroupStart {
  from: 'start' | { after: number };
  floor: number;
}

/** Resolves `startFrom` for a group created at log position `createdAt`. */
export function startOf(source: Source, startFrom: StartFrom, createdAt: number): GroupStart {
  if (startFrom === 'start') return { from: 'start', floor: 0 };
  if (startFrom === 'end') return { from: { after: createdAt }, floor: 0 };
  if ('stream' in source) return { from: 'start', floor: startFrom };
  return startFrom <= 1 ? { from: 'start', floor: 0 } : { from: { after: startFrom - 1 }, floor: 0 };
}

interface Fold {
  version: number;
  groups: Map<string, GroupDefinition>;
}

const keyOf = (source: Source, group: string) => JSON.stringify([sourceName(source), group]);

/** Answered when a group does not exist (the clients' `PersistentSubscriptionDoesNotExistError`). */
export const groupMissing = (source: Source, group: string) =>
  new GrpcError(
    5, // NOT_FOUND
    `Subscription group ${group} on stream ${sourceName(source)} does not exist.`,
    'persistent-subscription-does-not-exist',
    { 'stream-name': sourceName(source), 'group-name': group },
  );

/** Answered when a group exists already (`PersistentSubscriptionExistsError`). */
export const groupExists = (source: Source, group: string) =>
  new GrpcError(
    6, // ALREADY_EXISTS
    `Subscription group ${group} on stream ${sourceName(source)} exists.`,
    'persistent-subscription-exists',
    { 'stream-name': sourceName(source), 'group-name': group },
  );

const sourceOfData = (name: string): Source => (name === '$all' ? { all: true } : { stream: name });

/** The groups of one store. */
export class GroupRegistry {
  readonly #store: EventStore;
  #fold: Fold = { version: 0, groups: new Map() };
  /** Reads of the stream run one after another: two at once would fold events out of order. */
  #reading: Promise<Fold> = Promise.resolve(this.#fold);

  constructor(store: EventStore) {
    this.#store = store;
  }

  /** Folds what was appended since the last read (by this server or any other). */
  #refresh(): Promise<Fold> {
    const next = this.#reading.then(
      () => this.#read(),
      () => this.#read(),
    );
    this.#reading = next;
    return next;
  }

  async #read(): Promise<Fold> {
    const fold = this.#fold;
    for await (const event of this.#store.readStream(registryStream, { fromVersion: fold.version + 1 })) {
      const data = event.data as { source?: string; group?: string; settings?: GroupSettings };
      fold.version = event.streamVersion;
      if (typeof data?.source !== 'string' || typeof data.group !== 'string') continue;
      const source = sourceOfData(data.source);
      const key = keyOf(source, data.group);
      if (event.type === 'PersistentSubscriptionDeleted') fold.groups.delete(key);
      else if (data.settings && event.type === 'PersistentSubscriptionCreated') {
        fold.groups.set(key, {
          source,
          group: data.group,
          settings: data.settings,
          generation: event.position,
          start: startOf(source, data.settings.startFrom, event.position),
        });
      } else if (data.settings && event.type === 'PersistentSubscriptionUpdated') {
        const known = fold.groups.get(key);
        if (known) fold.groups.set(key, { ...known, settings: data.settings });
      }
    }
    return fold;
  }

  /** The group, as defined now, or undefined. */
  async get(source: Source, group: string): Promise<GroupDefinition | undefined> {
    return (await this.#refresh()).groups.get(keyOf(source, group));
  }

  /** Every group, oldest first. */
  async list(): Promise<GroupDefinition[]> {
    return [...(await this.#refresh()).groups.values()];
  }

  /**
   * Records a change decided on the fold: `decide` returns the event to append, or throws.
   * Retried on a concurrent change.
   */
  async #change(
    decide: (known: GroupDefinition | undefined) => { type: string; settings?: GroupSettings },
    source: Source,
    group: string,
    actor: string | undefined,
  ): Promise<GroupDefinition | undefined> {
    for (let attempt = 0; ; attempt++) {
      const fold = await this.#refresh();
      const { type, settings } = decide(fold.groups.get(keyOf(source, group)));
      const data: JsonObject = { source: sourceName(source), group };
      if (settings) data.settings = settings as unknown as JsonObject;
      try {
        await this.#store.append(registryStream, [{ type, data, metadata: actor ? { actor } : {} }], {
          expectedVersion: fold.version === 0 ? 'no-stream' : fold.version,
        });
      } catch (error) {
        if (error instanceof ConcurrencyError && attempt < 20) continue;
        throw error;
      }
      return (await this.#refresh()).groups.get(keyOf(source, group));
    }
  }

  /** Defines a new group; {@link groupExists} if it is there already. */
  async create(source: Source, group: string, settings: GroupSettings, actor?: string): Promise<GroupDefinition> {
    const made = await this.#change(
      (known) => {
        if (known) throw groupExists(source, group);
        return { type: 'PersistentSubscriptionCreated', settings };
      },
      source,
      group,
      actor,
    );
    return made as GroupDefinition;
  }

  /** Replaces a group's settings (its `$all` filter stays); {@link groupMissing} if there is none. */
  async update(
    source: Source,
    group: string,
    settings: (known: GroupDefinition) => GroupSettings,
    actor?: string,
  ): Promise<GroupDefinition> {
    const changed = await this.#change(
      (known) => {
        if (!known) throw groupMissing(source, group);
        return { type: 'PersistentSubscriptionUpdated', settings: settings(known) };
      },
      source,
      group,
      actor,
    );
    return changed as GroupDefinition;
  }

  /** Deletes a group; {@link groupMissing} if there is none. */
  async delete(source: Source, group: string, actor?: string): Promise<void> {
    await this.#change(
      (known) => {
        if (!known) throw groupMissing(source, group);
        return { type: 'PersistentSubscriptionDeleted' };
      },
      source,
      group,
      actor,
    );
  }
}
