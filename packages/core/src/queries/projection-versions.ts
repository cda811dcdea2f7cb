/** Which version of each projection readers are served (sql/0012_projection_versions.sql). */
import type { SqlQueryable } from '../db/sql-client.js';

/** The version of `name` readers are served, as switched to last (null: never switched). */
export interface ServingVersion {
  name: string;
  version: number;
  switchedAt: Date;
  switchedBy: string | null;
}

export async function readServingVersion(
  db: SqlQueryable,
  schema: string,
  name: string,
): Promise<ServingVersion | null> {
  const [row] = await db.query<{
    name: string;
    version: number;
    switched_at: Date | string;
    switched_by: string | null;
  }>(`select name, version, switched_at, switched_by from "${schema}".projection_versions where name = $1`, [name]);
  return row
    ? {
        name: row.name,
        version: Number(row.version),
        switchedAt: new Date(row.switched_at),
        switchedBy: row.switched_by,
      }
    : null;
}

/** Serves `version` of `name` from now on. */
export async function writeServingVersion(
  db: SqlQueryable,
  schema: string,
  name: string,
  version: number,
  actor: string | null,
): Promise<void> {
  await db.query(
    `insert into "${schema}".projection_versions (name, version, switched_by) values ($1, $2, $3)
     on conflict (name) do update
       set version = excluded.version, switched_at = now(), switched_by = excluded.switched_by`,
    [name, version, actor],
  );
}
