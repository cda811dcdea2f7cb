import { applyRoles, type RoleNames, rolesSql } from '@annals/core';
import { type ConnectionFlags, connect } from '../config.js';

export interface RolesFlags extends ConnectionFlags {
  owner?: string;
  app?: string;
  reader?: string;
  apply?: boolean;
  json?: boolean;
}

/**
 * `annals roles`: prints the SQL of the store's three roles (owner, application, reader) for
 * the schema; with `--apply`, runs it (as a superuser): the roles and the schema, the pending
 * migrations as the owner, then the grants.
 */
export async function rolesCommand(flags: RolesFlags): Promise<void> {
  const names: RoleNames = {
    schema: flags.schema ?? process.env.ANNALS_SCHEMA ?? 'annals',
    owner: flags.owner,
    app: flags.app,
    reader: flags.reader,
  };
  if (!flags.apply) {
    const sql = rolesSql(names);
    if (flags.json) {
      console.log(JSON.stringify(sql));
      return;
    }
    console.log(sql.setup);
    console.log(`-- Then, as "${sql.names.owner}": annals migrate --schema ${sql.names.schema}`);
    console.log(`-- (annals roles --apply does all three steps as a superuser.)\n`);
    console.log(sql.grants);
    return;
  }
  const { client, description } = await connect(flags);
  try {
    const result = await applyRoles(client, names);
    if (flags.json) {
      console.log(JSON.stringify({ names: result.names, applied: result.applied, current: result.current }));
      return;
    }
    const { schema, owner, app, reader } = result.names;
    console.log(`database: ${description}`);
    console.log(`schema "${schema}" owned by "${owner}", at migration ${result.current}`);
    for (const m of result.applied) console.log(`applied ${String(m.id).padStart(4, '0')}_${m.name} as "${owner}"`);
    console.log(`granted: "${app}" (application), "${reader}" (read-only)`);
    console.log(`set passwords with: alter role "<name>" password '...'`);
  } finally {
    await client.close();
  }
}
