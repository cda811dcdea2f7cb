/**
 * Annals: event sourcing on PostgreSQL. The public API of `@annals/core`; the embedded PGlite
 * backend is a separate entry point, `@annals/core/pglite`.
 */

export { loadMigrations, type MigrateResult, type Migration, migrate } from './db/migrate.js';
export { createPostgresClient, type PostgresClientOptions } from './db/pg-client.js';
export type { SqlCapabilities, SqlClient, SqlQueryable } from './db/sql-client.js';
export {
  AnnalsError,
  type AnnalsErrorCode,
  ConcurrencyError,
  DatabaseError,
  EventIdReusedError,
  InvalidInputError,
  PayloadTooLargeError,
  SchemaOutdatedError,
  SchemaTooNewError,
  StoreClosedError,
} from './errors.js';
export { defaultStoreOptions, type StoreOptions } from './options.js';
export { EventStore, type OpenEventStoreOptions, openEventStore } from './store/event-store.js';
export { toArray } from './to-array.js';
export type {
  AppendOptions,
  AppendResult,
  EventMetadata,
  ExpectedVersion,
  JsonObject,
  JsonValue,
  LogHolder,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamInfo,
  StreamWrite,
} from './types.js';
