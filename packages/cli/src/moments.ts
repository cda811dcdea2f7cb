/** Parsing of the CLI's moments and deciders: the one place command-line text becomes values. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Decider, type DomainEvent, InvalidInputError, mergeDecider, type PointInTime } from '@annals/core';

const isoTime = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** An ISO-8601 time (`2026-11-27`, `2026-11-27T10:00:00Z`); anything else is refused. */
export function parseTime(text: string, field: string): Date {
  const time = isoTime.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(time.getTime())) {
    throw new InvalidInputError(
      field,
      `must be an ISO-8601 time such as 2026-11-27T10:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  return time;
}

/**
 * A moment in a stream: `12` or `version:12` (a stream version), `position:345` (a global
 * position), or an ISO-8601 time.
 */
export function parseMoment(text: string): PointInTime {
  const match = /^(?:(version|position):)?(\d+)$/.exec(text);
  if (match) {
    const value = Number(match[2]);
    if (!Number.isSafeInteger(value)) throw new InvalidInputError('--at', `${text} is out of range`);
    return match[1] === 'position' ? { position: value } : { version: value };
  }
  if (/^\d{4}-/.test(text)) return { time: parseTime(text, '--at') };
  throw new InvalidInputError(
    '--at',
    `must be a version (12 or version:12), a position (position:345) or an ISO-8601 time, got ${JSON.stringify(text)}`,
  );
}

type AnyDecider = Decider<never, DomainEvent, unknown>;

/** `path/to/module.ts#export` (default export when no `#`), or the merging decider when absent. */
export async function loadDecider(spec: string | undefined): Promise<AnyDecider> {
  if (spec === undefined) return mergeDecider as unknown as AnyDecider;
  const [file, name = 'default'] = spec.split('#');
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(resolve(file as string)).href);
  } catch (error) {
    throw new InvalidInputError('--decider', `cannot load ${file}: ${error instanceof Error ? error.message : error}`);
  }
  const decider = module[name] as Partial<AnyDecider> | undefined;
  if (typeof decider?.evolve !== 'function' || typeof decider.initialState !== 'function') {
    throw new InvalidInputError('--decider', `${spec} is not a decider (no initialState and evolve)`);
  }
  return decider as AnyDecider;
}
