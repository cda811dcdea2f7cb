/**
 * The decider pattern: a domain model as three plain functions over plain data.
 *
 * - `decide(command, state)` returns the events the command causes, or throws a
 *   {@link DomainError} when a business rule refuses it;
 * - `evolve(state, event)` returns the state after one event;
 * - `initialState()` is the state of a stream with no events.
 *
 * No I/O: the command handler loads, decides and appends around them.
 */
import type { JsonValue } from '../types.js';

/** An event as the domain sees it: a type and its data. */
export interface DomainEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  type: Type;
  data: Data;
}

/** A command: a type, its data and, for exactly-once handling, an id. */
export interface Command<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
  /**
   * Handling a command twice with the same id appends once and returns the first result.
   * Any string of 1-256 characters (a UUID is usual).
   */
  id?: string;
}

/** A domain model: see the module comment. */
export interface Decider<C extends Command, E extends DomainEvent, S> {
  decide(command: C, state: S): E | readonly E[];
  evolve(state: S, event: E): S;
  initialState(): S;
}

/** The state after `events`, from the initial state: the fold every load is built on. */
export function replay<C extends Command, E extends DomainEvent, S>(
  decider: Decider<C, E, S>,
  events: Iterable<E>,
  from: S = decider.initialState(),
): S {
  let state = from;
  for (const event of events) state = decider.evolve(state, event);
  return state;
}

/** `decide`'s result as an array. */
export function decideAll<C extends Command, E extends DomainEvent, S>(
  decider: Decider<C, E, S>,
  command: C,
  state: S,
): E[] {
  const result = decider.decide(command, state);
  return Array.isArray(result) ? [...result] : [result as E];
}
