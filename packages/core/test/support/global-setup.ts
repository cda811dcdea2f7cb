/** Says up front which suites run: the PostgreSQL ones need DATABASE_URL. */
export default function setup(): void {
  if (!process.env.DATABASE_URL) {
    console.warn(
      '\n[annals] DATABASE_URL is not set: running on the embedded backend (PGlite) only.\n' +
        '[annals] Not run: the PostgreSQL server suites (ordering stress, concurrency across processes, roles,\n' +
        '[annals]   concurrent migrations, lost connections, LISTEN reconnect, projection crash and failover,\n' +
        '[annals]   consumer groups, 10k concurrent bank transfers).\n' +
        '[annals] Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run them.\n',
    );
  }
}
