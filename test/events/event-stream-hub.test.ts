import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { EventStreamHub } from '../../src/events/event-stream-hub.js';
import { createLogger } from '../../src/logger.js';
import { createEventsRepository, type EventRow } from '../../src/repositories/events-repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createUser } from '../helpers/fixtures.js';

let db: TestDatabase;
let userId: string;

const insertEvents = async (count: number, type: string): Promise<void> => {
  for (let index = 0; index < count; index += 1) {
    await db.pool.query(sql.unsafe`
      INSERT INTO events (id, category, type, user_id, data) VALUES (${ulid()}, 'workflow', ${type}, ${userId}, ${sql.jsonb({ index })})`);
  }
};

const latestSeq = () => createEventsRepository(db.pool).latestSeq();

/** Subscribes, waits for `expected` deliveries (or the deadline), and returns what arrived. */
const collect = async (
  hub: EventStreamHub,
  afterSeq: number | undefined,
  whileSubscribed: () => Promise<void>,
  expected: number,
): Promise<EventRow[]> => {
  const received: EventRow[] = [];
  const subscription = await hub.subscribe({ filter: { userId }, deliver: (event) => received.push(event) }, afterSeq);
  try {
    await whileSubscribed();
    const deadline = Date.now() + 5_000;
    while (received.length < expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // A few more polls: anything extra (old events sent again) would arrive now.
    await new Promise((resolve) => setTimeout(resolve, 150));
  } finally {
    subscription.close();
  }
  return received;
};

describe('EventStreamHub', () => {
  let hub: EventStreamHub;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = await createUser(db.pool);
    hub = new EventStreamHub({
      repository: createEventsRepository(db.pool),
      logger: createLogger(loadConfig({ LOG_LEVEL: 'silent' })),
      pollIntervalMs: 20,
    });
  });

  afterAll(async () => {
    hub.stop();
    await db.drop();
  });

  it('sends a new subscriber only what happens after it subscribed, not the events before', async () => {
    await insertEvents(30, 'before');
    const received = await collect(hub, undefined, () => insertEvents(3, 'after'), 3);
    expect(received.map((event) => event.type)).toEqual(['after', 'after', 'after']);
  });

  it('resumes after Last-Event-ID with each later event once, none of the earlier ones', async () => {
    await insertEvents(10, 'seen');
    const resumeFrom = await latestSeq();
    await insertEvents(4, 'missed');
    const received = await collect(hub, resumeFrom, () => insertEvents(2, 'live'), 6);
    expect(received.map((event) => event.type)).toEqual(['missed', 'missed', 'missed', 'missed', 'live', 'live']);
    expect(new Set(received.map((event) => event.seq)).size).toBe(6);
    expect(received.every((event) => event.seq > resumeFrom)).toBe(true);
  });
});
