/**
 * Errors as the KurrentDB clients read them: a gRPC status whose trailing metadata names the
 * `exception` (`stream-deleted`, `wrong-expected-version`, `access-denied`...) with its
 * details (`stream-name`, `expected-version`, `actual-version`), as KurrentDB sends them.
 */
import {
  AnnalsError,
  ConcurrencyError,
  EventIdReusedError,
  type ExpectedVersion,
  InvalidInputError,
  PayloadTooLargeError,
  StoreClosedError,
  StreamArchivedError,
  StreamDeletedError,
  StreamNotFoundError,
  StreamTombstonedError,
} from '@annals/core';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { AuthenticationError } from '../auth/principal.js';
import { BadRequest } from './mapping.js';

/** An error with the status, message and metadata it is answered with. */
export class GrpcError extends Error implements Partial<ServiceError> {
  override readonly name = 'GrpcError';
  readonly code: status;
  readonly metadata: Metadata;
  readonly details: string;

  constructor(code: status, message: string, exception?: string, extra: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.details = message;
    this.metadata = new Metadata();
    if (exception) this.metadata.set('exception', exception);
    for (const [key, value] of Object.entries(extra)) this.metadata.set(key, value);
  }
}

/** `stream-deleted`: what KurrentDB answers for a tombstoned stream (and Annals for any deleted one read). */
export const streamDeleted = (stream: string) =>
  new GrpcError(status.FAILED_PRECONDITION, `Event stream '${stream}' is deleted.`, 'stream-deleted', {
    'stream-name': stream,
  });

/** Refused credentials: the clients turn UNAUTHENTICATED into `AccessDeniedError`. */
export const unauthenticated = (message: string) => new GrpcError(status.UNAUTHENTICATED, message, 'access-denied');

/** A principal without the scope or category: `AccessDeniedError` too. */
export const accessDenied = (message: string) => new GrpcError(status.PERMISSION_DENIED, message, 'access-denied');

/** Expected versions in KurrentDB's numbers: a revision, or -1 no stream, -2 any, -4 stream exists. */
const expectedNumber = (expected: ExpectedVersion) =>
  typeof expected === 'number'
    ? String(expected - 1)
    : expected === 'no-stream'
      ? '-1'
      : expected === 'any'
        ? '-2'
        : '-4';

/** Any error of a call as the status it is answered with; unknown ones hide their message. */
export function grpcErrorOf(error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  if (error instanceof BadRequest) return new GrpcError(status.INVALID_ARGUMENT, error.message);
  if (error instanceof AuthenticationError) return unauthenticated(error.message);
  if (error instanceof ConcurrencyError) {
    const extra: Record<string, string> = {
      'stream-name': error.streamId,
      'expected-version': expectedNumber(error.expected),
    };
    if (error.actual > 0) extra['actual-version'] = String(error.actual - 1);
    return new GrpcError(status.FAILED_PRECONDITION, error.message, 'wrong-expected-version', extra);
  }
  if (error instanceof StreamNotFoundError) {
    return new GrpcError(status.NOT_FOUND, error.message, 'stream-not-found', { 'stream-name': error.streamId });
  }
  if (error instanceof StreamDeletedError) return streamDeleted(error.streamId);
  if (error instanceof StreamTombstonedError) return streamDeleted(error.streamId);
  if (error instanceof StreamArchivedError) {
    return new GrpcError(status.FAILED_PRECONDITION, error.message, undefined, { 'stream-name': error.streamId });
  }
  if (error instanceof InvalidInputError || error instanceof EventIdReusedError) {
    return new GrpcError(status.INVALID_ARGUMENT, error.message);
  }
  if (error instanceof PayloadTooLargeError) {
    return new GrpcError(status.INVALID_ARGUMENT, error.message, 'maximum-append-size-exceeded', {
      'maximum-append-size': String(error.limit),
    });
  }
  if (error instanceof StoreClosedError) return new GrpcError(status.UNAVAILABLE, 'the server is shutting down');
  if (error instanceof AnnalsError) return new GrpcError(status.FAILED_PRECONDITION, error.message);
  return new GrpcError(status.INTERNAL, 'internal error');
}
