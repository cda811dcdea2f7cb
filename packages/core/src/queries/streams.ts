/** Stream heads: version, existence and metadata of one stream. */
import type { SqlQueryable } from '../db/sql-client.js';
import type { JsonObject, StreamInfo } from '../types.js';

interface StreamRow {
  stream_id: string;
  version: string | number | bigint;
  metadata: JsonObject;
  created_at: Date;
  updated_at: Date;
}

const columns = 'stream_id, version, metadata, created_at, updated_at';

function toStreamInfo(row: StreamRow): StreamInfo {
  const version = Number(row.version);
  return {
    streamId: row.stream_id,
    version,
    exists: version > 0,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The head of `streamId`, or null when the stream has neither events nor metadata. */
export async function readStreamInfo(db: SqlQueryable, schema: string, streamId: string): Promise<StreamInfo | null> {
  const rows = await db.query<StreamRow>(`select ${columns} from "${schema}".streams where stream_id = $1`, [streamId]);
  return rows[0] ? toStreamInfo(rows[0]) : null;
}

/** Replaces the metadata of `streamId` (creating its head when it has none yet). */
export async function writeStreamMetadata(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  metadataJson: string,
): Promise<StreamInfo> {
  const rows = await db.query<StreamRow>(
    `insert into "${schema}".streams (stream_id, metadata) values ($1, $2::jsonb)
     on conflict (stream_id) do update set metadata = excluded.metadata, updated_at = now()
     returning ${columns}`,
    [streamId, metadataJson],
  );
  return toStreamInfo(rows[0] as StreamRow);
}
