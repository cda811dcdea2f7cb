/**
 * The database roles of a store, as SQL: what each is for, and exactly the privileges that
 * takes (docs/operations.md). `annals roles` prints or applies it.
 *
 * - the **owner** migrates: it owns the schema, its tables and `append_events`, which runs as
 *   it (SECURITY DEFINER, migration 0007). Nothing else writes to `events`.
 * - the **application** role runs every feature of the library: appends (only through
 *   `append_events`), reads, stream metadata, commands with snapshots, subscriptions and
 *   consumer groups (checkpoints, parked events, members), projections (checkpoints,
 *   documents), seals, erasure (subject keys). It cannot change or remove an event or a seal,
 *   write to `events` directly, take the log lock by itself, nor alter a table or a trigger.
 * - the **reader**, for reporting, reads every table (subject keys included, so it reads
 *   personal fields as the application does) but the append coordinator's token, and writes
 *   nothing.
 */
import { InvalidInputError } from '../errors.js';
import { assertSchemaName } from '../options.js';
import { type MigrateResult, migrate } from './migrate.js';
import type { SqlClient, SqlQueryable } from './sql-client.js';

/** Names of the three roles of a store, and its schema. */
export interface RoleNames {
  /** @defaultValue `'annals'` */
  schema?: string;
  /** The migration role, owner of the schema. @defaultValue `<schema>_owner` */
  owner?: string;
  /** The application role. @defaultValue `<schema>_app` */
  app?: string;
  /** The read-only role for reporting. @defaultValue `<schema>_reader` */
  reader?: string;
}

/** The SQL of {@link rolesSql}, in the order it must run. */
export interface RolesSql {
  /** The resolved names. */
  names: Required<RoleNames>;
  /**
   * Run first, by a role that may create roles (a superuser): creates the roles that do not
   * exist yet (LOGIN, without a password: set one with `alter role ... password`), lets the
   * owner create a schema in this database, and creates the schema owned by it.
   */
  setup: string;
  /**
   * Run after the migrations (by the owner or a superuser): the grants on the schema's tables
   * and on `append_events`. Idempotent; run it again after an upgrade adds migrations.
   */
  grants: string;
}

type Privilege = 'select' | 'insert' | 'update' | 'delete' | 'update (created_at)';

/** Each table of migrations 0001-0013 and what the application role does with it. */
const appTablePrivileges: Record<string, Privilege[]> = {
  migrations: ['select'],
  events: ['select'],
  log_head: ['select'],
  streams: ['select', 'insert', 'update'],
  snapshots: ['select', 'insert', 'update', 'delete'],
  checkpoints: ['select', 'insert', 'update', 'delete'],
  parked_events: ['select', 'insert', 'update', 'delete'],
  group_members: ['select', 'insert', 'update', 'delete'],
  documents: ['select', 'insert', 'update', 'delete'],
  seals: ['select', 'insert'],
  // A snapshot is written only while the stream's subjects keep their keys, which the write
  // holds FOR KEY SHARE: that lock needs UPDATE on some column. created_at is the harmless one.
  subject_keys: ['select', 'insert', 'delete', 'update (created_at)'],
  subject_streams: ['select', 'insert', 'delete'],
  // Written only by change_stream_state and append_events, which run as the owner.
  stream_states: ['select'],
  // Written only by the partitioning functions of 0011, which run as the owner.
  event_partitioning: ['select'],
  reclaimed_ranges: ['select'],
  // A rebuild that reaches the head switches readers to its version.
  projection_versions: ['select', 'insert', 'update'],
  // The append coordinator's address and token (0013): written by whichever application
  // process holds the role; never readable by the reader, since the token lets its holder append.
  append_coordinator: ['select', 'insert', 'update'],
};

/** Tables the reader role may not read. */
const hiddenFromReader = new Set(['append_coordinator']);

/** The tables of the schema as migrations 0001-0013 make them. */
export const storeTables: readonly string[] = Object.keys(appTablePrivileges);

const appendEventsSignature =
  'append_events(int[], text[], bigint[], int[], int[], int[], uuid[], text[], jsonb[], jsonb[])';

const changeStreamStateSignature = 'change_stream_state(text, text, bigint)';
const setStreamRetentionSignature = 'set_stream_retention(text, boolean, bigint, boolean, bigint, bigint)';

const rolePattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The SQL that creates the owner, application and reader roles of a store and grants each
 * what it is for (see the module comment). Names are plain identifiers (lower-case letters,
 * digits, `_`), three different ones.
 *
 * @example
 * ```ts
 * import { rolesSql } from '@annals/core';
 *
 * const { setup, grants } = rolesSql({ schema: 'annals', app: 'billing_app' });
 * console.log(`${setup}\n-- annals migrate, as annals_owner\n${grants}`);
 * ```
 */
export function rolesSql(names: RoleNames = {}): RolesSql {
  if (typeof names !== 'object' || names === null) throw new InvalidInputError('names', 'must be an object');
  const schema = names.schema ?? 'annals';
  assertSchemaName(schema);
  const resolved: Required<RoleNames> = {
    schema,
    owner: names.owner ?? `${schema}_owner`,
    app: names.app ?? `${schema}_app`,
    reader: names.reader ?? `${schema}_reader`,
  };
  for (const field of ['owner', 'app', 'reader'] as const) {
    const value = resolved[field];
    if (typeof value !== 'string' || !rolePattern.test(value) || value.startsWith('pg_')) {
      throw new InvalidInputError(
        field,
        `must be 1-63 lower-case letters, digits or "_", not starting with a digit or "pg_"; got ${JSON.stringify(value)}`,
      );
    }
  }
  const { owner, app, reader } = resolved;
  if (new Set([owner, app, reader]).size !== 3) {
    throw new InvalidInputError('app', 'the owner, application and reader roles must be three different roles');
  }
  const s = `"${schema}"`;
  const createRole = (role: string) =>
    `do $$ begin
  if not exists (select from pg_roles where rolname = '${role}') then create role "${role}" login; end if;
end $$;`;

  const setup = [
    `-- Roles of the Annals store in schema ${s}: "${owner}" migrates and owns it, "${app}" runs the`,
    `-- application, "${reader}" reads for reporting. Run as a role that may create roles.`,
    createRole(owner),
    createRole(app),
    createRole(reader),
    `-- The application and the reader must not act as the owner (nor as each other).`,
    `revoke "${owner}" from "${app}", "${reader}";`,
    `do $$ begin execute format('grant create on database %I to "${owner}"', current_database()); end $$;`,
    `create schema if not exists ${s} authorization "${owner}";`,
    '',
  ].join('\n');

  const grantLines = [
    `-- Grants on the tables of migrations 0001-0013 of ${s}. Run after \`annals migrate\`.`,
    `grant usage on schema ${s} to "${app}", "${reader}";`,
    `revoke create on schema ${s} from "${app}", "${reader}";`,
  ];
  for (const [table, privileges] of Object.entries(appTablePrivileges)) {
    grantLines.push(`revoke all on table ${s}.${table} from "${app}", "${reader}";`);
    grantLines.push(`grant ${privileges.join(', ')} on table ${s}.${table} to "${app}";`);
    if (!hiddenFromReader.has(table)) grantLines.push(`grant select on table ${s}.${table} to "${reader}";`);
  }
  grantLines.push(
    `-- Events enter the log only through append_events, which runs as the owner.`,
    `revoke all on function ${s}.${appendEventsSignature} from public, "${reader}";`,
    `grant execute on function ${s}.${appendEventsSignature} to "${app}";`,
    `-- Stream lifecycle changes (delete, tombstone, archive, retention) go through change_stream_state and set_stream_retention, as the owner.`,
    `revoke all on function ${s}.${changeStreamStateSignature} from public, "${reader}";`,
    `grant execute on function ${s}.${changeStreamStateSignature} to "${app}";`,
    `revoke all on function ${s}.${setStreamRetentionSignature} from public, "${reader}";`,
    `grant execute on function ${s}.${setStreamRetentionSignature} to "${app}";`,
    '',
  );
  return { names: resolved, setup, grants: grantLines.join('\n') };
}

/**
 * Applies {@link rolesSql} on `client`, which must connect as a role that may create roles and
 * act as the owner (a superuser): the setup, then the pending migrations as the owner (so that
 * it owns what they create, `append_events` included), then the grants.
 */
export async function applyRoles(client: SqlClient, names: RoleNames = {}): Promise<RolesSql & MigrateResult> {
  const sql = rolesSql(names);
  await client.exec(sql.setup);
  const asOwner = new Proxy(client, {
    get(target, property) {
      if (property === 'transaction') {
        return <T>(work: (tx: SqlQueryable) => Promise<T>) =>
          target.transaction(async (tx) => {
            await tx.exec(`set local role "${sql.names.owner}"`);
            return work(tx);
          });
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const migrated = await migrate(asOwner, sql.names.schema);
  await client.exec(sql.grants);
  return { ...sql, ...migrated };
}
