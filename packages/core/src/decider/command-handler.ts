/**
 * The command handler: load, decide, append with the expected version, retry on conflict.
 *
 * handle(stream, command, context):
 * 1. If the command has an id and its first event is already stored, the command was handled
 *    before: return that first result (`duplicate: true`), append nothing.
 * 2. Load the state: the latest snapshot of a matching model version, then the events after
 *    it, each decoded (upcast, validated) by the event registry when there is one.
 * 3. `decide`. A business-rule violation is the decider's own error, thrown as is; nothing
 *    is appended.
 * 4. Append the events with the version just loaded as the expected version. Their ids are
 *    derived from (command id, stream, index), so a repeat of the command can never be stored
 *    twice, even when two processes handle it at once. Every event is stamped with the
 *    context: actor, reason, correlation and causation ids, command id and type.
 * Within one handler, commands on the same stream run one at a time, in arrival order.
 *
 * 5. On a concurrency conflict (with another process), read the events appended meanwhile and decide again, up to
 *    `maxRetries` times, after a random pause that doubles with each attempt (up to 50 ms) so
 *    that racing handlers spread out instead of colliding again.
 * 6. Save a snapshot when the stream crossed a multiple of `snapshots.every`.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ConcurrencyError, EventIdReusedError, InvalidInputError } from '../errors.js';
import { commandEventId, newEventId } from '../event-id.js';
import { snapshots } from '../snapshots/snapshots.js';
import type { EventStore } from '../store/event-store.js';
import { inSpan } from '../tracing.js';
import type { EventMetadata, JsonValue, NewEvent, RecordedEvent } from '../types.js';
import { assertStreamId, guarded, readOptions } from '../validation.js';
import { type Command, type Decider, type DomainEvent, decideAll } from './decider.js';
import type { EventRegistry } from './event-registry.js';

/** Who, why and in answer to what a command is handled; stamped on every event it appends. */
export interface CommandContext {
  /** Who asks: a user id, a service name. */
  actor?: string;
  /** Why; defaults to the command's type. */
  reason?: string;
  /** The request this belongs to; defaults to the command id. */
  correlationId?: string;
  /** What directly caused it (a command or event id); defaults to the command id. */
  causationId?: string;
  /** Anything else to keep on each event. */
  metadata?: EventMetadata;
}

/** Snapshot policy of a command handler. */
export interface SnapshotOptions<S> {
  /** Save a snapshot each time the stream crosses a multiple of this many events. */
  every: number;
  /** Version of the state's shape; bump it when `evolve` changes and old snapshots are ignored. */
  version: number;
  /** State to JSON; defaults to the state itself (it must then be plain JSON). */
  toJson?: (state: S) => JsonValue;
  /** JSON back to state; defaults to the JSON itself. */
  fromJson?: (json: JsonValue) => S;
}

/** Options of {@link commandHandler}. */
export interface CommandHandlerOptions<S> {
  /** The decider's name: keys its snapshots. */
  name: string;
  /** Reloads and retries after a concurrency conflict. @defaultValue 10 */
  maxRetries?: number;
  snapshots?: SnapshotOptions<S>;
  /** Told when saving a snapshot failed (the command itself succeeded). */
  onSnapshotError?: (error: unknown, streamId: string) => void;
  /** Validates events at append and decodes (upcasts, validates) them at load. */
  events?: EventRegistry;
  /** Schemas of the accepted command types; when given, other types and invalid data are refused. */
  commands?: Record<string, StandardSchemaV1>;
}

/** What handling a command did. */
export interface CommandResult<S> {
  streamId: string;
  /** The state after the command. */
  state: S;
  streamVersion: number;
  /** The events appended (for a duplicate: those the first handling appended). */
  events: RecordedEvent[];
  /** True when the command id had been handled before and nothing was appended now. */
  duplicate: boolean;
}

/** The context for a command issued in reaction to `event`: same correlation, `event` as cause. */
export function causedBy(event: RecordedEvent, actor?: string): CommandContext {
  return {
    actor: actor ?? event.metadata.actor,
    correlationId: event.metadata.correlationId ?? event.id,
    causationId: event.id,
  };
}

/** Handles commands for one decider on one store; see the module comment. */
export class CommandHandler<C extends Command, E extends DomainEvent, S> {
  readonly #store: EventStore;
  readonly #decider: Decider<C, E, S>;
  readonly #options: CommandHandlerOptions<S>;
  readonly #maxRetries: number;
  /** Per stream, the last command queued on it (see #oneAtATime). */
  readonly #streams = new Map<string, Promise<void>>();

  constructor(store: EventStore, decider: Decider<C, E, S>, options: CommandHandlerOptions<S>) {
    assertStreamId(options.name, 'name', 256);
    const maxRetries = options.maxRetries ?? 10;
    if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
      throw new InvalidInputError('maxRetries', 'must be an integer >= 0');
    }
    const every = options.snapshots?.every;
    if (every !== undefined && (!Number.isSafeInteger(every) || every < 1)) {
      throw new InvalidInputError('snapshots.every', 'must be an integer >= 1');
    }
    this.#store = store;
    this.#decider = decider;
    this.#options = options;
    this.#maxRetries = maxRetries;
  }

  /**
   * Handles one command on one stream; see the module comment.
   *
   * @example
   * ```ts
   * const accounts = commandHandler(store, bankAccount, { name: 'account', snapshots: { every: 100, version: 1 } });
   * const { state } = await accounts.handle('account-42', { type: 'Deposit', data: { amount: 10 }, id: requestId }, {
   *   actor: 'ada',
   * });
   * ```
   */
  async handle(streamId: string, command: C, context: CommandContext = {}): Promise<CommandResult<S>> {
    assertStreamId(streamId, 'streamId', this.#store.options.maxStreamIdLength);
    if (typeof command !== 'object' || command === null) throw new InvalidInputError('command', 'must be an object');
    command = guarded('command', () => ({ ...command }));
    await this.#checkCommand(command);
    const given = readOptions<CommandContext>(context, 'context');
    checkContext(given);
    return inSpan('annals.command', { 'annals.stream': streamId, 'annals.command': String(command.type) }, () =>
      this.#oneAtATime(streamId, () => this.#handle(streamId, command, given)),
    );
  }

  /**
   * Runs commands on one stream one after another within this handler, in arrival order.
   * Racing them would only make all but one fail and retry; queued, none conflicts here, and
   * none starves behind newer ones. Conflicts with other processes are still retried.
   */
  #oneAtATime<T>(streamId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#streams.get(streamId) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#streams.set(streamId, tail);
    void tail.then(() => {
      if (this.#streams.get(streamId) === tail) this.#streams.delete(streamId);
    });
    return run;
  }

  async #handle(streamId: string, command: C, context: CommandContext): Promise<CommandResult<S>> {
    const commandId = command.id ?? newEventId();
    if (command.id !== undefined) {
      const handled = await this.#store.getEvent(commandEventId(command.id, streamId, 0));
      if (handled) return this.#firstResult(streamId, handled, command.id);
    }

    let loaded = await this.load(streamId);
    for (let attempt = 0; ; attempt++) {
      const { state, streamVersion } = loaded;
      const decided = decideAll(this.#decider, command, state);
      if (decided.length === 0) return { streamId, state, streamVersion, events: [], duplicate: false };
      const events = await this.#toNewEvents(decided, streamId, command, commandId, context);
      try {
        const result = await this.#store.append(streamId, events, { expectedVersion: streamVersion });
        if (result.duplicate) return this.#firstResult(streamId, null, commandId, result.positions[0]);
        const after = decided.reduce((s, event) => this.#decider.evolve(s, event), state);
        await this.#maybeSnapshot(streamId, streamVersion, result.streamVersion, after);
        const recorded = events.map(
          (event, i): RecordedEvent => ({
            position: result.positions[i] as number,
            streamId,
            streamVersion: streamVersion + i + 1,
            id: event.id as string,
            type: event.type,
            data: event.data,
            metadata: event.metadata as EventMetadata,
            recordedAt: result.recordedAt,
          }),
        );
        return { streamId, state: after, streamVersion: result.streamVersion, events: recorded, duplicate: false };
      } catch (error) {
        // Handled meanwhile by someone else, who decided other events under the same ids.
        if (error instanceof EventIdReusedError && command.id !== undefined) {
          return this.#firstResult(streamId, null, command.id);
        }
        if (!(error instanceof ConcurrencyError) || attempt >= this.#maxRetries) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
        // Only the events appended meanwhile need reading: the retry's window stays short.
        loaded = await this.#catchUp(streamId, state, streamVersion);
      }
    }
  }

  /**
   * The state of a stream: now, or as of `version` (time travel). Starts from the latest
   * usable snapshot when snapshots are on.
   */
  async load(streamId: string, options: { version?: number } = {}): Promise<{ state: S; streamVersion: number }> {
    const policy = this.#options.snapshots;
    const { snapshot, events } = await snapshots(this.#store).loadStream(streamId, {
      snapshotOf: policy ? { decider: this.#options.name, modelVersion: policy.version } : undefined,
      toVersion: options.version,
    });
    let state = this.#decider.initialState();
    let streamVersion = 0;
    if (snapshot && policy) {
      state = policy.fromJson ? policy.fromJson(snapshot.state) : (snapshot.state as S);
      streamVersion = snapshot.streamVersion;
    }
    for await (const event of events) {
      state = this.#decider.evolve(state, (await this.#decode(event)) as E);
      streamVersion = event.streamVersion;
    }
    return { state, streamVersion };
  }

  /** Folds the events after `streamVersion` (up to `version`, when given) into `state`. */
  async #catchUp(
    streamId: string,
    state: S,
    streamVersion: number,
    version?: number,
  ): Promise<{ state: S; streamVersion: number }> {
    const limit = version === undefined ? undefined : version - streamVersion;
    let current = { state, streamVersion };
    for await (const event of this.#store.readStream(streamId, { fromVersion: streamVersion + 1, limit })) {
      current = {
        state: this.#decider.evolve(current.state, (await this.#decode(event)) as E),
        streamVersion: event.streamVersion,
      };
    }
    return current;
  }

  async #decode(event: RecordedEvent): Promise<DomainEvent> {
    return this.#options.events ? this.#options.events.decode(event) : { type: event.type, data: event.data };
  }

  async #checkCommand(command: C): Promise<void> {
    if (typeof command !== 'object' || command === null) throw new InvalidInputError('command', 'must be an object');
    assertStreamId(command.type, 'command.type', 256);
    if (command.id !== undefined) assertStreamId(command.id, 'command.id', 256);
    const schemas = this.#options.commands;
    if (!schemas) return;
    const schema = schemas[command.type];
    if (!schema) throw new InvalidInputError('command.type', `unknown command type ${JSON.stringify(command.type)}`);
    const result = await schema['~standard'].validate(command.data);
    if (result.issues) {
      throw new InvalidInputError('command.data', result.issues.map((issue) => issue.message).join('; '));
    }
  }

  async #toNewEvents(
    decided: E[],
    streamId: string,
    command: C,
    commandId: string,
    context: CommandContext,
  ): Promise<NewEvent[]> {
    const metadata: EventMetadata = {
      ...context.metadata,
      ...(context.actor === undefined ? {} : { actor: context.actor }),
      reason: context.reason ?? command.type,
      correlationId: context.correlationId ?? commandId,
      causationId: context.causationId ?? commandId,
      commandId,
      commandType: command.type,
    };
    return Promise.all(
      decided.map(async (event, index) => {
        const encoded = this.#options.events ? await this.#options.events.encode(event) : undefined;
        return {
          id: commandEventId(commandId, streamId, index),
          type: event.type,
          data: encoded ? encoded.data : event.data,
          metadata: encoded ? { ...metadata, ...encoded.metadata } : metadata,
        };
      }),
    );
  }

  /** The result of a command handled before: its events, and the state right after them. */
  async #firstResult(
    streamId: string,
    first: RecordedEvent | null,
    commandId: string,
    position?: number,
  ): Promise<CommandResult<S>> {
    const start = first ?? (await this.#store.getEvent(commandEventId(commandId, streamId, 0)));
    if (!start || (position !== undefined && start.position !== position)) {
      throw new Error(`command ${commandId} is recorded as handled on ${streamId} but its events are missing`);
    }
    const events: RecordedEvent[] = [];
    for await (const event of this.#store.readStream(streamId, { fromVersion: start.streamVersion, pageSize: 100 })) {
      if (event.metadata.commandId !== commandId) break;
      events.push(event);
    }
    const streamVersion = (events.at(-1) as RecordedEvent).streamVersion;
    const { state } = await this.load(streamId, { version: streamVersion });
    return { streamId, state, streamVersion, events, duplicate: true };
  }

  async #maybeSnapshot(streamId: string, before: number, after: number, state: S): Promise<void> {
    const policy = this.#options.snapshots;
    if (!policy || Math.floor(after / policy.every) === Math.floor(before / policy.every)) return;
    try {
      const json = policy.toJson ? policy.toJson(state) : (state as JsonValue);
      await snapshots(this.#store).save({
        streamId,
        decider: this.#options.name,
        modelVersion: policy.version,
        streamVersion: after,
        state: json,
      });
    } catch (error) {
      // A snapshot is a cache: failing to save one (the database, or a state that is not plain
      // JSON without `toJson`) must not fail a command whose events are stored. Loads then
      // read from an older snapshot or from the start; `onSnapshotError` hears about it.
      this.#options.onSnapshotError?.(error, streamId);
    }
  }
}

/** Builds a {@link CommandHandler}. */
export function commandHandler<C extends Command, E extends DomainEvent, S>(
  store: EventStore,
  decider: Decider<C, E, S>,
  options: CommandHandlerOptions<S>,
): CommandHandler<C, E, S> {
  return new CommandHandler(store, decider, options);
}

function checkContext(context: CommandContext): void {
  if (typeof context !== 'object' || context === null) throw new InvalidInputError('context', 'must be an object');
  for (const key of ['actor', 'reason', 'correlationId', 'causationId'] as const) {
    const value = context[key];
    if (value !== undefined && typeof value !== 'string') {
      throw new InvalidInputError(`context.${key}`, 'must be a string');
    }
  }
  const { metadata } = context;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
    throw new InvalidInputError('context.metadata', 'must be an object');
  }
}
