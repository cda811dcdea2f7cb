/**
 * Annals: event sourcing on PostgreSQL. The public API of `@annals/core`; the embedded PGlite
 * backend is a separate entry point, `@annals/core/pglite`, and the test helpers another,
 * `@annals/core/testing`.
 *
 * The shape: {@link openEventStore} returns the event store itself (append, read, stream
 * heads, the log's head). Everything else is a facet, a function of a store:
 * `subscriptions(store)`, `projections(store)`, `snapshots(store)`, `integrity(store)`,
 * `personalData(store)`, `auditTrail(store)`, `transfer(store)`, `lifecycle(store)`, `timeTravel(store, decider)`
 * and `commandHandler(store, decider, options)`.
 */

export {
  type AuditEntry,
  auditTrail,
  type CausalNode,
  type IndexedMetadataKey,
  type TimeRange,
  toAuditEntry,
} from './audit/audit-trail.js';
export {
  type AppendCoordinatorOptions,
  type AppendCoordinatorStatus,
  appendCoordinatorStatus,
} from './coordinator/append-coordinator.js';
export {
  loadMigrations,
  type MigrateResult,
  type Migration,
  migrate,
  type SchemaStatus,
  schemaStatus,
} from './db/migrate.js';
export { createGroupCommit, createPostgresClient, type PostgresClientOptions } from './db/pg-client.js';
export type { GroupCommit } from './db/pg-group-commit.js';
export { applyRoles, type RoleNames, type RolesSql, rolesSql, storeTables } from './db/roles.js';
export type {
  Listener,
  PoolStats,
  QueryOptions,
  SqlCapabilities,
  SqlClient,
  SqlQueryable,
  SqlSession,
} from './db/sql-client.js';
export {
  type CommandContext,
  CommandHandler,
  type CommandHandlerOptions,
  type CommandResult,
  causedBy,
  commandHandler,
  type SnapshotOptions,
} from './decider/command-handler.js';
export {
  type Command,
  type Decider,
  type DomainEvent,
  decideAll,
  replay,
} from './decider/decider.js';
export {
  defineEvents,
  type EventDefinition,
  EventRegistry,
  type EventRegistryOptions,
  schemaVersionKey,
} from './decider/event-registry.js';
export {
  AnnalsError,
  type AnnalsErrorCode,
  ConcurrencyError,
  DatabaseError,
  DomainError,
  EventIdReusedError,
  EventValidationError,
  ImportLineError,
  ImportRefusedError,
  InlineProjectionError,
  InvalidInputError,
  PayloadTooLargeError,
  ReclaimRefusedError,
  SchemaOutdatedError,
  SchemaTooNewError,
  StoreClosedError,
  StreamArchivedError,
  StreamDeletedError,
  StreamMetadataChangedError,
  StreamNotFoundError,
  StreamTombstonedError,
  TamperDetectedError,
  UnknownEventTypeError,
  type ValidationIssue,
} from './errors.js';
export { type Integrity, integrity, type SealStatus } from './integrity/integrity.js';
export { Sealer, type SealerOptions, type SealerStatus } from './integrity/sealer.js';
export type { BrokenLink, VerifyOptions, VerifyReport } from './integrity/verify.js';
export {
  type Lifecycle,
  type LifecycleChange,
  type LifecycleResult,
  lifecycle,
  lifecycleStream,
  type RetentionResult,
  type RetentionSettings,
} from './lifecycle/lifecycle.js';
export { defaultStoreOptions, type StoreOptions } from './options.js';
export {
  type DetachResult,
  type EventPartition,
  type Partitions,
  type PartitionsStatus,
  partitions,
  type ReclaimedRange,
} from './partitions/partitions.js';
export { type ForgetResult, type PersonalData, personalData } from './personal/erasure.js';
export type { PersonalDataPolicy, PersonalFields } from './personal/personal-data.js';
export type { Projection } from './projections/projection.js';
export {
  ProjectionRunner,
  type ProjectionRunnerOptions,
  type ProjectionStatus,
} from './projections/projection-runner.js';
export { type Projections, projections, type RebuildOptions, type ServingVersion } from './projections/projections.js';
export type { CheckpointStatus, ParkedEvent } from './queries/checkpoints.js';
export type { Documents } from './queries/documents.js';
export type { Snapshot } from './queries/snapshots.js';
export { type LoadedStream, type Snapshots, snapshots } from './snapshots/snapshots.js';
export { EventStore, type OpenEventStoreOptions, openEventStore } from './store/event-store.js';
export type { AppendBatchReport, AppendReport, StoreInstrumentation } from './store/instrumentation.js';
export {
  type ListStreamsOptions,
  listStreams,
  type StreamPage,
  type StreamSummary,
} from './store/stream-list.js';
export { ConsumerGroupMember, type ConsumerGroupOptions } from './subscriptions/consumer-group.js';
export {
  Subscription,
  type SubscriptionOptions,
  type SubscriptionStatus,
} from './subscriptions/subscription.js';
export { type Subscriptions, subscriptions } from './subscriptions/subscriptions.js';
export {
  assertTenantId,
  createTenant,
  createTenantClients,
  dropTenant,
  getTenant,
  listTenants,
  migrateTenants,
  type TenancyOptions,
  type Tenant,
  type TenantClients,
  tenantClient,
  tenantNames,
} from './tenancy/tenants.js';
export {
  type Changes,
  mergeDecider,
  type PointInTime,
  type ReplayStep,
  type StateAt,
  stateChanges,
  timeTravel,
} from './time-travel/time-travel.js';
export { toArray } from './to-array.js';
export { type EmmettSourceOptions, emmettSource } from './transfer/emmett-source.js';
export { type GzipLinesOptions, gzipLines } from './transfer/gzip.js';
export type { ImportMode, ImportProgress, ImportResult } from './transfer/import.js';
export { type ExportResumePoint, prepareExportResume } from './transfer/resume.js';
export { type ExportOptions, type ImportOptions, type Transfer, transfer } from './transfer/transfer.js';
export type {
  AppendOptions,
  AppendResult,
  EventMetadata,
  ExpectedVersion,
  JsonObject,
  JsonValue,
  LifecycleReadOptions,
  LogHolder,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamInfo,
  StreamRetention,
  StreamState,
  StreamWrite,
} from './types.js';
