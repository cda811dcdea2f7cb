/**
 * The one place errors become HTTP responses: every `AnnalsError` code maps to one status,
 * and every response is RFC 9457 `application/problem+json` with the code and, where there is
 * one, the offending field. Bad input never answers 5xx: only the database being unreachable
 * (503) or a fault of the server itself (500) do.
 */
import {
  AnnalsError,
  type AnnalsErrorCode,
  ConcurrencyError,
  DomainError,
  InvalidInputError,
  PayloadTooLargeError,
  StreamArchivedError,
  StreamDeletedError,
  StreamTombstonedError,
} from '@annals/core';
import type { FastifyError } from 'fastify';

/** The HTTP status of each error code of the store. */
export const statusOfCode: Record<AnnalsErrorCode, number> = {
  INVALID_INPUT: 400,
  PAYLOAD_TOO_LARGE: 413,
  CONCURRENCY_CONFLICT: 409,
  STREAM_METADATA_CHANGED: 409,
  EVENT_ID_REUSED: 409,
  INVALID_EVENT: 422,
  UNKNOWN_EVENT_TYPE: 422,
  DOMAIN_ERROR: 422,
  PROJECTION_FAILED: 422,
  STREAM_NOT_FOUND: 404,
  STREAM_DELETED: 410,
  STREAM_TOMBSTONED: 410,
  STREAM_ARCHIVED: 409,
  TAMPER_DETECTED: 409,
  RECLAIM_REFUSED: 409,
  SCHEMA_TOO_NEW: 503,
  SCHEMA_OUTDATED: 503,
  STORE_CLOSED: 503,
  DATABASE_ERROR: 503,
};

/** A problem response body. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  [extension: string]: unknown;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A problem of `status` with the given code and detail. */
export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return {
    type: `urn:annals:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: titles[status] ?? 'Error',
    status,
    detail,
    code,
    ...extra,
  };
}

/** A problem thrown by a route that is not an error of the store (an unknown event id...). */
export class HttpProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

/** The problem for an error thrown while handling a request. */
export function problemOf(error: unknown): Problem {
  if (error instanceof HttpProblem) return error.problem;
  if (error instanceof AnnalsError) {
    const status = statusOfCode[error.code] ?? 500;
    const extra: Record<string, unknown> = {};
    if (error instanceof InvalidInputError || error instanceof PayloadTooLargeError) extra.field = error.field;
    if (error instanceof PayloadTooLargeError) Object.assign(extra, { limit: error.limit, actual: error.actual });
    if (error instanceof ConcurrencyError) {
      Object.assign(extra, { streamId: error.streamId, expected: error.expected, actual: error.actual });
    }
    if (error instanceof DomainError) extra.reason = error.reason;
    if (error instanceof StreamDeletedError)
      Object.assign(extra, { streamId: error.streamId, tombstoned: error.tombstoned });
    if (error instanceof StreamTombstonedError || error instanceof StreamArchivedError) extra.streamId = error.streamId;
    // A database failure's message may name internals: say what happened, not how.
    const detail = error.code === 'DATABASE_ERROR' ? 'the database is not available; try again' : error.message;
    return problem(status, error.code, detail, extra);
  }
  const fastify = error as Partial<FastifyError>;
  if (fastify.validation) {
    const first = fastify.validation[0];
    const where = fastify.validationContext ?? 'request';
    const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const field = [where, path, missing].filter(Boolean).join('.');
    return problem(400, 'INVALID_INPUT', `${field}: ${first?.message ?? 'is invalid'}`, { field });
  }
  switch (fastify.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'PAYLOAD_TOO_LARGE', 'the request body is larger than the server accepts', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', { field: 'content-type' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return problem(400, 'MALFORMED_JSON', 'the body is not valid JSON', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem(400, 'INVALID_INPUT', 'the content-length does not match the body', { field: 'content-length' });
  }
  if (error instanceof SyntaxError)
    return problem(400, 'MALFORMED_JSON', 'the body is not valid JSON', { field: 'body' });
  const status = typeof fastify.statusCode === 'number' ? fastify.statusCode : 500;
  if (status >= 400 && status < 500) return problem(status, 'INVALID_INPUT', fastify.message ?? 'bad request');
  return problem(500, 'INTERNAL_ERROR', 'the server failed to handle the request');
}
