/** Every error code and custom SQLSTATE is documented in docs/errors.md. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const read = (path: string) => readFile(new URL(path, import.meta.url), 'utf8');
/** A markdown table row whose first cell is `name` in backticks. */
const tableRow = (name: string) => new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm');

describe('docs/errors.md', () => {
  it('documents every error code, with its class', async () => {
    const [source, docs] = await Promise.all([read('../src/errors.ts'), read('../../../docs/errors.md')]);
    const union = source.slice(
      source.indexOf('export type AnnalsErrorCode'),
      source.indexOf(';', source.indexOf('export type AnnalsErrorCode')),
    );
    const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(5);
    for (const code of codes) expect(docs, code).toMatch(tableRow(code as string));
    const classes = Object.entries(api).filter(
      ([, value]) => typeof value === 'function' && value.prototype instanceof api.AnnalsError,
    );
    // One class per code; a subclass that refines another exported class (as DomainError's
    // subclasses do) shares its code.
    type ErrorClass = abstract new (...args: never[]) => unknown;
    const refinements = classes.filter(([, value]) =>
      classes.some(([, other]) => other !== value && (value as ErrorClass).prototype instanceof (other as ErrorClass)),
    );
    expect(classes.length - refinements.length).toBe(codes.length);
    for (const [name] of classes) expect(docs, name).toContain(`\`${name}\``);
  });

  it('documents every custom SQLSTATE the schema raises', async () => {
    const [sql, docs] = await Promise.all([read('../sql/0001_event_store.sql'), read('../../../docs/errors.md')]);
    const states = [...new Set([...sql.matchAll(/errcode = '(AN\d{3})'/g)].map((m) => m[1]))];
    expect(states.length).toBeGreaterThan(0);
    for (const state of states) expect(docs, state).toMatch(tableRow(state as string));
  });
});
