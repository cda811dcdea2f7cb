/**
 * The official client's own README sample (TypeScript), unchanged but for the host and port
 * of its connection string, as an acceptance test, on each backend.
 */
import { FORWARDS, type JSONEventType, jsonEvent, KurrentDBClient, START } from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KurrentServer, startKurrentServer } from './kurrent-support.js';
import { backends } from './support.js';

type SeatReservedEvent = JSONEventType<
  'seat-reserved',
  { reservationId: string; movieId: string; userId: string; seatId: string }
>;
type SeatChangedEvent = JSONEventType<'seat-changed', { reservationId: string; newSeatId: string }>;
type ReservationEvents = SeatReservedEvent | SeatChangedEvent;

describe.each(backends)('the client README sample on $name', (backend) => {
  let server: KurrentServer;
  let client: KurrentDBClient;
  beforeAll(async () => {
    server = await startKurrentServer(backend);
    // The sample's `admin:changeit@localhost:2113`: credentials are ignored without TLS.
    client = KurrentDBClient.connectionString`kurrentdb://admin:changeit@127.0.0.1:${String(server.grpc?.port)}?tls=false`;
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.cleanup();
  });

  it('appends a reservation and folds it back from the stream', async () => {
    const streamName = 'booking-abc123';
    const event = jsonEvent<SeatReservedEvent>({
      type: 'seat-reserved',
      data: { reservationId: 'abc123', movieId: 'tt0368226', userId: 'nm0802995', seatId: '4b' },
    });
    await client.appendToStream<ReservationEvents>(streamName, event);
    await client.appendToStream<ReservationEvents>(
      streamName,
      jsonEvent<SeatChangedEvent>({ type: 'seat-changed', data: { reservationId: 'abc123', newSeatId: '5c' } }),
    );

    const events = client.readStream<ReservationEvents>(streamName, {
      fromRevision: START,
      direction: FORWARDS,
      maxCount: 10,
    });
    const reservation: Partial<{ reservationId: string; movieId: string; userId: string; seatId: string }> = {};
    for await (const { event } of events) {
      switch (event?.type) {
        case 'seat-reserved': {
          reservation.reservationId = event.data.reservationId;
          reservation.movieId = event.data.movieId;
          reservation.seatId = event.data.seatId;
          reservation.userId = event.data.userId;
          break;
        }
        case 'seat-changed': {
          reservation.seatId = event.data.newSeatId;
          break;
        }
      }
    }
    expect(reservation).toEqual({ reservationId: 'abc123', movieId: 'tt0368226', userId: 'nm0802995', seatId: '5c' });
  });
});
