/**
 * Field encryption for personal data: AES-256-GCM with a synthetic IV.
 *
 * The IV is an HMAC of the field's context (subject, event id, path) and its plaintext, so
 * encrypting the same event twice gives the same bytes: an append retried with the same
 * event id is still recognised as a duplicate, and the IV never repeats for two different
 * plaintexts under one key (the failure that breaks GCM). The context is also the GCM
 * associated data, so a ciphertext copied into another event or field does not decrypt.
 * Encryption and IV keys are derived from the subject's key, never used directly.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { JsonValue } from '../types.js';

/** The property that marks an encrypted value in stored event data. */
const envelopeProperty = '$encrypted';

/** An encrypted field value as stored: `{ "$encrypted": "v1.<base64url(iv | ciphertext | tag)>" }`. */
export interface Envelope {
  [envelopeProperty]: string;
}

const prefix = 'v1.';

export function isEnvelope(value: unknown): value is Envelope {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as Record<string, unknown>)[envelopeProperty] === 'string'
  );
}

/** The two keys derived from one subject key. */
export interface FieldKeys {
  encryption: Buffer;
  iv: Buffer;
}

export function deriveKeys(subjectKey: Buffer): FieldKeys {
  return {
    encryption: createHmac('sha256', subjectKey).update('annals.personal.encryption').digest(),
    iv: createHmac('sha256', subjectKey).update('annals.personal.iv').digest(),
  };
}

export function encryptValue(keys: FieldKeys, context: string, value: JsonValue): Envelope {
  const plaintext = Buffer.from(JSON.stringify(value), 'utf8');
  const iv = createHmac('sha256', keys.iv).update(context).update('\0').update(plaintext).digest().subarray(0, 12);
  const cipher = createCipheriv('aes-256-gcm', keys.encryption, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { [envelopeProperty]: prefix + body.toString('base64url') };
}

/** The value, or undefined when the envelope is malformed or does not authenticate. */
export function decryptValue(keys: FieldKeys, context: string, envelope: Envelope): JsonValue | undefined {
  const text = envelope[envelopeProperty];
  if (!text.startsWith(prefix)) return undefined;
  const body = Buffer.from(text.slice(prefix.length), 'base64url');
  if (body.length < 12 + 16) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.encryption, body.subarray(0, 12));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    const plaintext = Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
    return JSON.parse(plaintext.toString('utf8')) as JsonValue;
  } catch {
    return undefined;
  }
}

/** What binds a ciphertext to its place: subject, event and field. */
export function fieldContext(subject: string, eventId: string, path: string): string {
  return JSON.stringify([subject, eventId, path]);
}
