import { migrate } from '@annals/core';
import { type ConnectionFlags, connect } from '../config.js';

/** `annals migrate`: applies pending schema migrations. */
export async function migrateCommand(flags: ConnectionFlags & { json?: boolean }): Promise<void> {
  const { client, schema, description } = await connect(flags);
  try {
    const result = await migrate(client, schema);
    if (flags.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(`database: ${description}`);
    if (result.applied.length === 0) console.log(`up to date (migration ${result.current})`);
    for (const m of result.applied) console.log(`applied ${String(m.id).padStart(4, '0')}_${m.name}`);
  } finally {
    await client.close();
  }
}
