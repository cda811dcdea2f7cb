/**
 * `@annals/nats`: relays an Annals event log to NATS JetStream, in log order, each event
 * exactly once. See {@link startNatsRelay}.
 *
 * @packageDocumentation
 */
export { header, type PersonalDataMode } from './messages.js';
export { AsyncPublisher, type PubAck, PublishRefusedError, wrongLastSequence } from './publisher.js';
export {
  NatsRelay,
  type NatsRelayOptions,
  type NatsRelayStatus,
  RelayStreamError,
  startNatsRelay,
} from './relay.js';
export { categoryOf, type SubjectTemplate, type SubjectValues, subjectTemplate, toToken } from './subjects.js';
