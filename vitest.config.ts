import { defineConfig } from 'vitest/config';

// `@annals/source`: the workspace packages' `exports` point this condition at their TypeScript
// sources, so tests run on the sources without a build. Vitest adds its default conditions
// (`node`, `development|production`) to these, for the test files and for the forked workers.
const conditions = ['@annals/source'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'],
    globalSetup: ['packages/core/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files run in parallel workers; each works in schemas of its own.
    pool: 'forks',
  },
});
