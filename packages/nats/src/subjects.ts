/**
 * Subjects of relayed events, from a template such as `annals.{category}.{type}`.
 *
 * A NATS subject is tokens separated by `.`; a token may not be empty nor hold whitespace,
 * `.`, `*` or `>`. Stream ids and event types may hold any of those, so each value put into a
 * placeholder becomes one token: every character other than a letter, a digit, `_` or `-` is
 * replaced by `_` (an empty value by `_`). The subject is for routing only; the exact values
 * travel in the message's headers.
 */
import { InvalidInputError } from '@annals/core';

/** The placeholders a template may use. */
export const placeholders = ['category', 'type', 'stream'] as const;
type Placeholder = (typeof placeholders)[number];

/** What a subject is made of: an event's category, type and stream id. */
export interface SubjectValues {
  category: string;
  type: string;
  stream: string;
}

/** A checked template: `subjectOf` for one event, `filter` for the JetStream stream's subjects. */
export interface SubjectTemplate {
  readonly template: string;
  /** The subject of an event. */
  subjectOf(values: SubjectValues): string;
  /** The subjects of every event, as a NATS wildcard filter (each placeholder a `*`). */
  readonly filter: string;
}

const literalToken = /^[A-Za-z0-9_-]+$/;
const placeholderToken = /^\{([a-z]+)\}$/;

/** Replaces every character a subject token may not hold. */
export function toToken(value: string): string {
  return value === '' ? '_' : value.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The category of a stream id, as the store derives it: the part before the first `-`. */
export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash < 0 ? streamId : streamId.slice(0, dash);
}

/**
 * Checks and compiles a subject template. Each token is a literal (letters, digits, `_`, `-`)
 * or one whole placeholder (`{category}`, `{type}`, `{stream}`); the first is a literal not
 * beginning with `_`, and at least one is a placeholder.
 * Throws {@link InvalidInputError}.
 */
export function subjectTemplate(template: string): SubjectTemplate {
  if (typeof template !== 'string' || template.length === 0 || template.length > 200) {
    throw new InvalidInputError('subject', 'must be a template of 1-200 characters, e.g. "annals.{category}.{type}"');
  }
  const parts = template.split('.').map((token): string | { name: Placeholder } => {
    const name = placeholderToken.exec(token)?.[1];
    if (name !== undefined) {
      if (!(placeholders as readonly string[]).includes(name)) {
        throw new InvalidInputError(
          'subject',
          `unknown placeholder {${name}}: use ${placeholders.map((p) => `{${p}}`).join(', ')}`,
        );
      }
      return { name: name as Placeholder };
    }
    if (!literalToken.test(token)) {
      throw new InvalidInputError(
        'subject',
        `token "${token}" must be letters, digits, _ or -, or one placeholder such as {type}`,
      );
    }
    return token;
  });
  if (parts.every((part) => typeof part === 'string')) {
    throw new InvalidInputError('subject', 'must hold at least one placeholder, e.g. {type}');
  }
  // A stream on "*.*" would also take replies (_INBOX.<id>.<n>) and the JetStream API's own
  // subjects: the first token is a literal of the relay's own.
  const first = parts[0];
  if (typeof first !== 'string' || first.startsWith('_')) {
    throw new InvalidInputError(
      'subject',
      'must begin with a literal token (not a placeholder, not _...), e.g. "annals."',
    );
  }
  return {
    template,
    subjectOf: (values) =>
      parts.map((part) => (typeof part === 'string' ? part : toToken(values[part.name]))).join('.'),
    filter: parts.map((part) => (typeof part === 'string' ? part : '*')).join('.'),
  };
}
