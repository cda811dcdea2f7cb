#!/usr/bin/env node
/** The `annals` command. */
import { AnnalsError } from '@annals/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { auditCommand, historyCommand } from './commands/audit.js';
import { demoCommand } from './commands/demo.js';
import { forgetCommand, sealCommand, verifyCommand } from './commands/integrity.js';
import { createKeyCommand, listKeysCommand, revokeKeyCommand } from './commands/keys.js';
import {
  archiveCommand,
  deleteCommand,
  retentionCommand,
  tombstoneCommand,
  unarchiveCommand,
} from './commands/lifecycle.js';
import { migrateCommand } from './commands/migrate.js';
import { rebuildCommand, statsCommand, streamsCommand, tailCommand } from './commands/operate.js';
import {
  detachPartitionCommand,
  enablePartitionsCommand,
  maintainPartitionsCommand,
  partitionsStatusCommand,
} from './commands/partitions.js';
import { checkpointsCommand, holdersCommand, logCommand, parkedCommand, readCommand } from './commands/read.js';
import { relayNatsCommand } from './commands/relay.js';
import { rolesCommand } from './commands/roles.js';
import { serveCommand } from './commands/serve.js';
import {
  createTenantCommand,
  dropTenantCommand,
  listTenantsCommand,
  migrateTenantsCommand,
} from './commands/tenants.js';
import { changesCommand, replayCommand, stateCommand } from './commands/time-travel.js';
import { exportCommand, importCommand } from './commands/transfer.js';
import { defaultDataDir } from './config.js';

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const program = new Command('annals')
  .description('Annals: event sourcing on PostgreSQL')
  .showHelpAfterError()
  .addOption(
    new Option('--database-url <url>', 'PostgreSQL server (default: the embedded database)').env('DATABASE_URL'),
  )
  .addOption(
    new Option('--data-dir <dir>', 'embedded database directory').env('ANNALS_DATA_DIR').default(defaultDataDir),
  )
  .addOption(new Option('--schema <name>', 'PostgreSQL schema').env('ANNALS_SCHEMA').default('annals'));

const lifecycleCommands = {
  delete: deleteCommand,
  tombstone: tombstoneCommand,
  archive: archiveCommand,
  unarchive: unarchiveCommand,
};

const global = () => program.opts<{ databaseUrl?: string; dataDir?: string; schema?: string }>();

program
  .command('demo')
  .description('append, read and time-travel two bank accounts, printing what happens')
  .action(() => demoCommand(global()));

program
  .command('migrate')
  .description('apply pending schema migrations (safe to run from several processes at once)')
  .option('--json', 'machine-readable output')
  .action((options) => migrateCommand({ ...global(), ...options }));

program
  .command('roles')
  .description('print (or --apply) the SQL of the three roles: owner (migrates), application, reader')
  .option('--owner <name>', 'migration role, owner of the schema (default: <schema>_owner)')
  .option('--app <name>', 'application role (default: <schema>_app)')
  .option('--reader <name>', 'read-only role for reporting (default: <schema>_reader)')
  .option('--apply', 'run it (as a superuser): roles and schema, pending migrations as the owner, grants')
  .option('--json', 'machine-readable output')
  .action((options) => rolesCommand({ ...global(), ...options }));

program
  .command('read <stream>')
  .description("print a stream's events")
  .option('--from <version>', 'first version', integer)
  .option('--limit <n>', 'most events', integer)
  .option('--backward', 'newest first')
  .option('--include-deleted', 'also the events a delete or retention hides')
  .option('--include-archived', 'also read an archived stream')
  .option('--json', 'one JSON object per line')
  .action((stream, options) => readCommand(stream, { ...global(), ...options }));

program
  .command('log')
  .description('print the global log after a position')
  .option('--after <position>', 'start after this position', integer)
  .option('--limit <n>', 'most events', integer)
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--type <name>', 'only this event type (repeatable)', collect)
  .option('--include-deleted', 'also the events of deleted streams')
  .option('--include-archived', 'also the events of archived streams')
  .option('--json', 'one JSON object per line')
  .action((options) => logCommand({ ...global(), ...options }));

program
  .command('holders')
  .description('show the transactions holding the log lock (what appends and readers wait for)')
  .option('--json', 'machine-readable output')
  .action((options) => holdersCommand({ ...global(), ...options }));

program
  .command('checkpoints')
  .description('list subscriptions and projections with their position and lag')
  .option('--json', 'machine-readable output')
  .action((options) => checkpointsCommand({ ...global(), ...options }));

program
  .command('parked <subscription>')
  .description('list the events a subscription parked, with their errors')
  .option('--json', 'machine-readable output')
  .action((subscription, options) => parkedCommand(subscription, { ...global(), ...options }));

program
  .command('history <stream>')
  .description("a stream's events with who, when and why")
  .option('--from <version>', 'first version', integer)
  .option('--limit <n>', 'most events', integer)
  .option('--json', 'one JSON object per line')
  .action((stream, options) => historyCommand(stream, { ...global(), ...options }));

program
  .command('audit')
  .description(
    'what an actor did, what happened in a time range, what is held about a data subject, or the causal tree of one request',
  )
  .option('--actor <id>', 'only what this actor did')
  .option('--from <time>', 'from this ISO-8601 time (inclusive)')
  .option('--to <time>', 'up to this ISO-8601 time (inclusive)')
  .option('--type <name>', 'only this event type (repeatable)', collect)
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--correlation <id>', 'the causal tree of the events of this request')
  .option('--subject <id>', "every event holding this data subject's personal data")
  .option('--limit <n>', 'most events', integer)
  .option('--json', 'one JSON object per line (a JSON tree with --correlation)')
  .action((options) => auditCommand({ ...global(), ...options }));

program
  .command('state <stream>')
  .description('the state of a stream as of a version, a global position or a time')
  .requiredOption('--at <moment>', 'a version (12), a position (position:345) or an ISO-8601 time')
  .option('--decider <module#export>', "fold with the application's decider (default: merge each event's data)")
  .option('--json', 'machine-readable output')
  .action((stream, options) => stateCommand(stream, { ...global(), ...options }));

program
  .command('replay <stream>')
  .description('step through a stream: each event with what it changed in the state')
  .option('--from <version>', 'first version shown', integer)
  .option('--to <version>', 'last version shown', integer)
  .option('--decider <module#export>', "fold with the application's decider (default: merge each event's data)")
  .option('--json', 'one JSON step (before, event, after, changes) per line')
  .action((stream, options) => replayCommand(stream, { ...global(), ...options }));

program
  .command('changes')
  .description('what changed between two moments: the events, and each stream state before and after')
  .requiredOption('--from <moment>', 'an ISO-8601 time or position:N (exclusive)')
  .requiredOption('--to <moment>', 'an ISO-8601 time or position:N (inclusive)')
  .option('--category <name>', 'only streams of this category (repeatable)', collect)
  .option('--decider <module#export>', "fold with the application's decider (default: merge each event's data)")
  .option('--json', 'machine-readable output')
  .action((options) => changesCommand({ ...global(), ...options }));

program
  .command('seal')
  .description('seal the events appended since the last seal (tamper evidence)')
  .option('--json', 'machine-readable output')
  .action((options) => sealCommand({ ...global(), ...options }));

program
  .command('verify')
  .description('recompute the seals and report the first broken link (exit status 1 if any)')
  .option('--stream <id>', 'only this stream')
  .option('--seal', 'seal the latest events first')
  .option('--anchor <position:hash>', 'also check the log against an anchor printed by an earlier verify')
  .option('--json', 'machine-readable output')
  .action((options) => verifyCommand({ ...global(), ...options }));

program
  .command('forget <subject>')
  .description('erase a data subject: its personal fields read as null everywhere from now on')
  .requiredOption('--reason <text>', 'why (recorded with the erasure)')
  .option('--actor <id>', 'who asks (recorded with the erasure)')
  .option('--json', 'machine-readable output')
  .action((subject, options) => forgetCommand(subject, { ...global(), ...options }));

for (const [name, what] of [
  ['delete', 'soft-delete a stream: reads answer STREAM_DELETED until an append with any/no-stream re-opens it'],
  ['tombstone', 'delete a stream for good: every later append is refused'],
  ['archive', 'archive a stream: hidden from default reads and live workers, appends refused until unarchived'],
  ['unarchive', 'make an archived stream active again'],
] as const) {
  program
    .command(`${name} <stream>`)
    .description(`${what} (no event is removed; recorded in $lifecycle with who and why)`)
    .requiredOption('--reason <text>', 'why (recorded with the change)')
    .option('--actor <id>', 'who (recorded with the change)')
    .option('--expected-version <v>', 'only if the stream is at this version (a number, any or stream-exists)')
    .option('--json', 'machine-readable output')
    .action((stream, options) => lifecycleCommands[name](stream, { ...global(), ...options }));
}

program
  .command('retention <stream>')
  .description("hide a stream's older events from its reads (none is removed; recorded in $lifecycle)")
  .requiredOption('--reason <text>', 'why (recorded with the change)')
  .option('--actor <id>', 'who (recorded with the change)')
  .option('--max-count <n>', 'reads keep only the last n versions (none: all)')
  .option('--max-age <seconds>', 'reads keep only events of the last n seconds (none: all)')
  .option('--truncate-before <version>', 'hide versions below this, from the log too (only raised)', integer)
  .option('--json', 'machine-readable output')
  .action((stream, options) => retentionCommand(stream, { ...global(), ...options }));

const partitionsProgram = program
  .command('partitions')
  .description('reclaim space without rewriting the log: partition it by position, detach ranges of hidden events');
partitionsProgram
  .command('enable')
  .description('partition the events table by position range, in place (appends wait while it swaps)')
  .requiredOption('--size <events>', 'events per range (>= 1000)', integer)
  .option('--json', 'machine-readable output')
  .action((options) => enablePartitionsCommand({ ...global(), ...options }));
partitionsProgram
  .command('status')
  .description('the ranges attached, and what was reclaimed')
  .option('--json', 'machine-readable output')
  .action((options) => partitionsStatusCommand({ ...global(), ...options }));
partitionsProgram
  .command('maintain')
  .description('attach ranges until enough empty ones lie ahead of the head (run it from cron)')
  .option('--ahead <n>', 'empty ranges to keep ahead (default 2)', integer)
  .option('--json', 'machine-readable output')
  .action((options) => maintainPartitionsCommand({ ...global(), ...options }));
partitionsProgram
  .command('detach <partition>')
  .description('take a full, sealed range whose events are all hidden out of the log (recorded; its seals stay)')
  .requiredOption('--reason <text>', 'why (recorded with the range)')
  .option('--actor <id>', 'who (recorded with the range)')
  .option('--json', 'machine-readable output')
  .action((partition, options) => detachPartitionCommand(partition, { ...global(), ...options }));

program
  .command('tail')
  .description('follow the log live, like tail -f: each event as it commits, in log order, until Ctrl-C')
  .option('--after <position>', 'start after this position (default: the head now)', integer)
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--type <name>', 'only this event type (repeatable)', collect)
  .option('--json', 'one JSON object per line')
  .action((options) => tailCommand({ ...global(), ...options }));

const relay = program.command('relay').description('publish the log to other systems, in log order, each event once');
relay
  .command('nats')
  .description('relay the log to a NATS JetStream stream (one active relay per name across processes)')
  .addOption(new Option('--nats-url <urls>', 'NATS servers, comma-separated').env('NATS_URL'))
  .option('--name <name>', 'relay name: its checkpoint and lease (default: default)')
  .option('--stream <name>', 'JetStream stream, created when missing (default: ANNALS)')
  .option(
    '--subject <template>',
    'subject of each event, from {category} {type} {stream} (default: annals.{category}.{type})',
  )
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--type <name>', 'only this event type (repeatable)', collect)
  .addOption(new Option('--from <where>', 'where a relay with no checkpoint begins').choices(['start', 'end']))
  .option('--batch-size <n>', 'events read from the log at a time (default 2000)', integer)
  .option('--include-personal-data', 'publish personal fields in the clear (default: as null)')
  .option('--status-every <ms>', 'print its status this often (default 5000)', integer)
  .option('--json', 'status as one JSON object per line')
  .action((options) => relayNatsCommand({ ...global(), ...options }));

program
  .command('streams')
  .description('list the streams in stream-id order, with version, last event and state')
  .option('--category <name>', 'only this stream category')
  .option('--after <stream>', 'start after this stream id (the next page)')
  .option('--limit <n>', 'streams per page (default 100)', integer)
  .option('--json', 'machine-readable output')
  .action((options) => streamsCommand({ ...global(), ...options }));

program
  .command('stats')
  .description(
    "the log's head, events appended in the last 1, 5 and 15 minutes, seal lag, largest streams, runners' lag",
  )
  .option('--largest <n>', 'how many of the largest streams to show (0: skip walking the streams)', integer)
  .option('--json', 'machine-readable output')
  .action((options) => statsCommand({ ...global(), ...options }));

program
  .command('rebuild <projection>')
  .description(
    "rebuild an app module's projection from its checkpoint to the head, with progress and ETA; then serve readers that version",
  )
  .option('--app <module>', 'the application module that exports the projection')
  .option('--no-switch', 'leave readers on the version they are served')
  .option('--actor <id>', 'who switched (recorded with the switch)')
  .option('--json', 'the final status as JSON')
  .action((name, options) => rebuildCommand(name, { ...global(), ...options }));

program
  .command('export')
  .description('write the log as NDJSON, one event per line in log order, or gzip (stdout, or --out / --resume a file)')
  .option('--after <position>', 'only events after this position', integer)
  .option('--until <position|time>', 'up to this position or ISO-8601 time (default: the head when it starts)')
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--out <file>', 'write to this file instead of stdout')
  .option(
    '--resume <file>',
    'continue an export into this file after its last complete line (gzip: member), in its own format',
  )
  .option('--compress', 'write gzip (the default for a file name ending in .gz)')
  .option('--json', 'machine-readable summary (with --out or --resume)')
  .action((options) => exportCommand({ ...global(), ...options }));

program
  .command('import [file]')
  .description(
    'load an NDJSON export, plain or gzip (- for stdin), at COPY speed, as the schema owner; exit status 2 at a bad line or a refusal',
  )
  .addOption(
    new Option(
      '--mode <mode>',
      'restore: keep positions, into an empty log (default); append: new positions after the head',
    ).choices(['restore', 'append']),
  )
  .option('--emmett <url>', "instead of a file: the events of an Emmett PostgreSQL store's emt_messages (append)")
  .option('--emmett-schema <name>', "the schema of Emmett's tables (default public)")
  .option('--emmett-partition <name>', "Emmett's partition (default emt:default)")
  .option('--batch-size <n>', 'events per transaction (default 10000)', integer)
  .option('--no-seal', 'do not seal the log afterwards')
  .option('--json', 'machine-readable output')
  .action((file, options) => importCommand(file, { ...global(), ...options }));

program
  .command('serve')
  .description('serve the store over HTTP: append, read, follow live (SSE), audit, time travel, metrics')
  .addOption(new Option('--host <address>', 'address to listen on').env('ANNALS_HOST').default('127.0.0.1'))
  .addOption(
    new Option('--port <n>', 'port to listen on (0: any free port)')
      .env('ANNALS_PORT')
      .argParser(integer)
      .default(3000),
  )
  .option('--app <module>', 'application module: deciders, projections, personal-data policy, subscription handlers')
  .option('--body-limit <bytes>', 'largest request body', integer)
  .option('--pool-size <n>', 'database connections (PostgreSQL)', integer)
  .option('--append-concurrency <n>', 'coalesced append calls in flight at once (default 1)', integer)
  .option('--projections', "run the app's projections (one active runner across processes)")
  .option('--sealer', 'run a sealer')
  .addOption(
    new Option(
      '--append-coordinator [host:port]',
      'share commits with the other servers on this database: the holder of the role listens on host:port (default 127.0.0.1, any free port) and the others hand it their appends',
    ).env('ANNALS_APPEND_COORDINATOR'),
  )
  .addOption(
    new Option(
      '--append-coordinator-advertise <host:port>',
      'the coordinator address the other servers connect to, when not the one it listens on',
    ).env('ANNALS_APPEND_COORDINATOR_ADVERTISE'),
  )
  .addOption(
    new Option('--grpc-port <n>', 'also speak the KurrentDB gRPC protocol on this port (0: any free port)')
      .env('ANNALS_GRPC_PORT')
      .argParser(integer),
  )
  .addOption(
    new Option('--grpc-tls-cert <file>', "the gRPC port's TLS certificate (PEM, with --grpc-tls-key)").env(
      'ANNALS_GRPC_TLS_CERT',
    ),
  )
  .addOption(new Option('--grpc-tls-key <file>', "the certificate's private key (PEM)").env('ANNALS_GRPC_TLS_KEY'))
  .option('--log', 'log requests (JSON lines)')
  .addOption(
    new Option('--auth <mode>', 'API keys and tokens (default: on with PostgreSQL, off embedded)')
      .choices(['on', 'off'])
      .env('ANNALS_AUTH'),
  )
  .option('--tenants', 'serve every tenant of the directory (each key reaches its own tenant)')
  .option('--tenant <id>', "the one store's tenant: only its keys are accepted (default: default)")
  .option('--directory <schema>', 'schema of the tenant directory and API keys (default annals_control)')
  .option('--jwt-public-key <file>', 'also accept JWTs signed by this key (PEM or JWK)')
  .option('--jwks-file <file>', 'also accept JWTs signed by a key of this JWKS file')
  .option('--jwt-issuer <iss>', 'required issuer of JWTs')
  .option('--jwt-audience <aud>', 'required audience of JWTs')
  .option('--rate-limit <n>', 'requests per second per key (0: none; default 2000 with auth)', integer)
  .option('--sse-per-key <n>', 'open live connections per key (default 100; 0: no cap)', integer)
  .addOption(
    new Option('--relay-nats <urls>', 'also relay the log to NATS JetStream (stream ANNALS)').env('ANNALS_RELAY_NATS'),
  )
  .addOption(
    new Option(
      '--read-replica <url>',
      'serve reads from this streaming replica of DATABASE_URL (appends go to the primary)',
    ).env('ANNALS_READ_REPLICA'),
  )
  .action((options) => serveCommand({ ...global(), ...options }));

const keys = program.command('keys').description("the server's API keys: create, list, revoke");
keys
  .command('create')
  .description('create a key; its secret is printed once')
  .requiredOption('--name <name>', 'what the key is for')
  .requiredOption('--scopes <list>', 'comma-separated: read, append, subscribe, admin')
  .option('--tenant <id>', 'its tenant (default: default, the single store)')
  .option('--categories <list>', 'only these stream categories (comma-separated)')
  .option('--actor <actor>', 'the actor of its events (default key:<name>)')
  .option('--act-as', 'may name another actor in what it appends')
  .option('--expires <when>', 'expiry: 30d, 12h, 15m or an ISO-8601 time')
  .option('--server-role <role>', 'role the server logs in as, allowed to read keys (repeatable)', collect)
  .option('--directory <schema>', 'schema of the keys (default annals_control)')
  .option('--json', 'machine-readable output')
  .action((options) => createKeyCommand({ ...global(), ...options }));
keys
  .command('list')
  .description('list keys (never their secrets)')
  .option('--tenant <id>', "only this tenant's")
  .option('--directory <schema>', 'schema of the keys (default annals_control)')
  .option('--json', 'machine-readable output')
  .action((options) => listKeysCommand({ ...global(), ...options }));
keys
  .command('revoke <id>')
  .description('revoke a key: every server refuses it at once, its live connections end')
  .option('--directory <schema>', 'schema of the keys (default annals_control)')
  .option('--json', 'machine-readable output')
  .action((id, options) => revokeKeyCommand(id, { ...global(), ...options }));

const tenants = program.command('tenants').description('tenants, each a store in its own schema under its own roles');
const tenancyOptions = (command: Command) =>
  command
    .option('--directory <schema>', 'schema of the tenant directory (default annals_control)')
    .option('--prefix <prefix>', "prefix of tenants' schemas (default tenant_)")
    .option('--server-role <role>', 'role servers log in as (default annals_server)')
    .option('--json', 'machine-readable output');
tenancyOptions(
  tenants.command('create <id>').description('create a tenant (idempotent): schema, roles, migrations'),
).action((id, options) => createTenantCommand(id, { ...global(), ...options }));
tenancyOptions(tenants.command('list').description('list the tenants')).action((options) =>
  listTenantsCommand({ ...global(), ...options }),
);
tenancyOptions(tenants.command('migrate').description("apply pending migrations to every tenant's schema")).action(
  (options) => migrateTenantsCommand({ ...global(), ...options }),
);
tenancyOptions(tenants.command('drop <id>').description('delete a tenant and its whole log, for good'))
  .option('--yes', 'yes, delete it')
  .action((id, options) => dropTenantCommand(id, { ...global(), ...options }));

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof AnnalsError) {
    console.error(`annals: ${error.code}: ${error.message}`);
  } else {
    console.error(`annals: ${error instanceof Error ? error.message : String(error)}`);
  }
  process.exitCode = 1;
}
