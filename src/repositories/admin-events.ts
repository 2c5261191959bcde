import { sql, type CommonQueryMethods } from 'slonik';
import { ulid } from '../ids.js';

export type AdminEvent = {
  /** `price_added`, `price_retired`, `prices_recomputed`. */
  readonly type: string;
  /** The operator who acted. */
  readonly userId: string;
  readonly correlationId: string;
  readonly data: Record<string, unknown>;
};

/**
 * Records an operator's change (category `admin`) in the caller's transaction, so the
 * event exists exactly when the change does. Returns the event's id.
 */
export const insertAdminEvent = async (q: CommonQueryMethods, event: AdminEvent): Promise<string> => {
  const id = ulid();
  await q.query(sql.unsafe`
    INSERT INTO events (id, category, type, priority, user_id, correlation_id, data)
    VALUES (${id}, 'admin', ${event.type}, 'normal', ${event.userId}, ${event.correlationId}, ${sql.jsonb(event.data as never)})`);
  return id;
};
