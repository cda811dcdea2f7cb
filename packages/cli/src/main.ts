#!/usr/bin/env node
/** The `annals` command. */
import { AnnalsError } from '@annals/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { demoCommand } from './commands/demo.js';
import { migrateCommand } from './commands/migrate.js';
import { checkpointsCommand, holdersCommand, logCommand, parkedCommand, readCommand } from './commands/read.js';
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
  .command('read <stream>')
  .description("print a stream's events")
  .option('--from <version>', 'first version', integer)
  .option('--limit <n>', 'most events', integer)
  .option('--backward', 'newest first')
  .option('--json', 'one JSON object per line')
  .action((stream, options) => readCommand(stream, { ...global(), ...options }));

program
  .command('log')
  .description('print the global log after a position')
  .option('--after <position>', 'start after this position', integer)
  .option('--limit <n>', 'most events', integer)
  .option('--category <name>', 'only this stream category (repeatable)', collect)
  .option('--type <name>', 'only this event type (repeatable)', collect)
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
