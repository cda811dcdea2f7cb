/**
 * The application module a server runs with (`annals serve --app ./app.js`): the deciders
 * commands go to and time travel folds with, the projections the server may run, the
 * personal-data policy, and the handlers of subscriptions whose parked events it may replay.
 * Without one, the server still serves the log; state is then each event's data merged.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type Command,
  type Decider,
  type DomainEvent,
  type EventRegistry,
  InvalidInputError,
  type PersonalDataPolicy,
  type Projection,
  type RecordedEvent,
  type SnapshotOptions,
} from '@annals/core';

/** One decider the server handles commands for. */
export interface AppDecider {
  // biome-ignore lint/suspicious/noExplicitAny: deciders of any command, event and state shape.
  decider: Decider<Command, DomainEvent, any>;
  /** Event schemas: validated at append, upcast at read. */
  events?: EventRegistry;
  // biome-ignore lint/suspicious/noExplicitAny: the state shape is the decider's.
  snapshots?: SnapshotOptions<any>;
  maxRetries?: number;
}

/** What an application module exports (as named exports, or as its default export). */
export interface AnnalsApp {
  /** By name: `POST /commands/<name>/<stream>` and `?decider=<name>` in time travel. */
  deciders?: Record<string, AppDecider>;
  /** Run by `--projections` (one active runner per projection across server processes). */
  projections?: Projection[];
  /** Applied in each append's transaction. */
  inlineProjections?: Projection[];
  personalData?: PersonalDataPolicy;
  /** By subscription name: replays its parked events (`POST /subscriptions/<name>/parked/replay`). */
  subscriptions?: Record<string, (event: RecordedEvent) => Promise<void> | void>;
}

/** Checks the shape of an application module; throws {@link InvalidInputError}. */
export function checkApp(value: unknown): AnnalsApp {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError('app', 'must export an object');
  const app = value as AnnalsApp;
  for (const [name, entry] of Object.entries(app.deciders ?? {})) {
    const decider = entry?.decider as Partial<Decider<Command, DomainEvent, unknown>> | undefined;
    if (typeof decider?.decide !== 'function' || typeof decider.evolve !== 'function') {
      throw new InvalidInputError(`app.deciders.${name}`, 'must be { decider: { initialState, decide, evolve } }');
    }
  }
  for (const key of ['projections', 'inlineProjections'] as const) {
    if (app[key] !== undefined && !Array.isArray(app[key]))
      throw new InvalidInputError(`app.${key}`, 'must be an array');
  }
  for (const [name, handler] of Object.entries(app.subscriptions ?? {})) {
    if (typeof handler !== 'function') throw new InvalidInputError(`app.subscriptions.${name}`, 'must be a function');
  }
  return app;
}

/** Loads an application module from a file path. */
export async function loadApp(path: string): Promise<AnnalsApp> {
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(resolve(path)).href);
  } catch (error) {
    throw new InvalidInputError('--app', `cannot load ${path}: ${error instanceof Error ? error.message : error}`);
  }
  return checkApp(module.default ?? module);
}
