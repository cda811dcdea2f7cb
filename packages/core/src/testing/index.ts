/** Testing helpers for users of Annals: `@annals/core/testing`. */
export { type DeciderSpecification, deciderSpecification } from './decider-specification.js';
