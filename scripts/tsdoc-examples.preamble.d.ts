/**
 * The free names of the TSDoc examples: what an example may use without defining or importing
 * it. Type-checked with every example (scripts/tsdoc-examples.ts), never by the repository's
 * tsconfig (these globals must not leak into the real sources).
 *
 * Keep it small and honest: real types from the library or the example domain wherever one
 * exists, so an example calling something that does not exist still fails. Add a name here
 * only when an example needs it, with the narrowest true type.
 */

// The store every example talks to.
declare const store: import('@annals/core').EventStore;

// Library exports that examples of these very functions use without importing them.
declare const commandHandler: typeof import('@annals/core').commandHandler;
declare const toArray: typeof import('@annals/core').toArray;

// The example domain (examples/bank), with its real type.
declare const bankAccount: typeof import('../examples/bank/index.js').bankAccount;

// Stand-ins for the reader's own code.
declare const balances: import('@annals/core').Projection;
declare const requestId: string;
declare function sendMail(event: import('@annals/core').RecordedEvent): Promise<void>;
