import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, createTestApi, registerUser, securityEvents, type RegisteredUser, type TestApi } from '../helpers/api.js';

let api: TestApi;
let admin: RegisteredUser;
let alice: RegisteredUser;

beforeAll(async () => {
  api = await createTestApi();
  admin = await registerUser(api.app);
  alice = await registerUser(api.app);
  await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
});

afterAll(async () => {
  await api.close();
});

describe('budget routes', () => {
  it('lets a superuser set and read a user\u2019s budget, with what is spent and reserved', async () => {
    const as = asUser(api.app, admin);
    const put = await as({
      method: 'PUT',
      url: `/api/v1/admin/users/${alice.id}/budget`,
      payload: { token_budget: 5000, cost_budget_usd: 0.25 },
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({
      user_id: alice.id,
      token_budget: 5000,
      cost_budget_usd: 0.25,
      spent_tokens: 0,
      spent_cost_usd: 0,
      reserved_tokens: 0,
      reserved_cost_usd: 0,
    });
    const stored = await api.db.pool.one(sql.unsafe`SELECT token_budget, cost_budget_usd::text AS usd FROM users WHERE id = ${alice.id}`);
    expect(stored).toEqual({ token_budget: 5000, usd: '0.2500000000' });
    const get = await as({ method: 'GET', url: `/api/v1/admin/users/${alice.id}/budget` });
    expect(get.json()).toMatchObject({ token_budget: 5000, cost_budget_usd: 0.25 });
    const cleared = await as({
      method: 'PUT',
      url: `/api/v1/admin/users/${alice.id}/budget`,
      payload: { token_budget: null, cost_budget_usd: null },
    });
    expect(cleared.json()).toMatchObject({ token_budget: null, cost_budget_usd: null });
  });

  it('refuses non-superusers with 403 (recorded), unknown users with 404, bad budgets with 422', async () => {
    const denied = await asUser(
      api.app,
      alice,
    )({
      method: 'PUT',
      url: `/api/v1/admin/users/${alice.id}/budget`,
      payload: { token_budget: null, cost_budget_usd: null },
    });
    expect(denied.statusCode).toBe(403);
    expect((await securityEvents(api.db, 'access_denied')).some((event) => event.user_id === alice.id)).toBe(true);
    expect((await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/admin/users/${alice.id}/budget` })).statusCode).toBe(403);
    const as = asUser(api.app, admin);
    expect((await as({ method: 'GET', url: '/api/v1/admin/users/nobody/budget' })).statusCode).toBe(404);
    for (const payload of [
      { token_budget: -1, cost_budget_usd: null },
      { token_budget: 1.5, cost_budget_usd: null },
      { token_budget: 10 },
      { token_budget: null, cost_budget_usd: '1' },
    ]) {
      const response = await as({ method: 'PUT', url: `/api/v1/admin/users/${alice.id}/budget`, payload });
      expect(response.statusCode).toBe(422);
      expect(response.json<{ detail: unknown[] }>().detail.length).toBeGreaterThan(0);
    }
    expect((await api.app.inject({ method: 'GET', url: `/api/v1/admin/users/${alice.id}/budget` })).statusCode).toBe(401);
  });

  it('lets the owner set a conversation\u2019s budgets with PUT /conversations/{id} and read them', async () => {
    const as = asUser(api.app, alice);
    const created = await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'budgeted' } });
    const id = created.json<{ id: string }>().id;
    const put = await as({ method: 'PUT', url: `/api/v1/conversations/${id}`, payload: { token_budget: 1200, cost_budget_usd: 0.05 } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ token_budget: 1200, cost_budget_usd: 0.05, title: 'budgeted' });
    const budget = await as({ method: 'GET', url: `/api/v1/conversations/${id}/budget` });
    expect(budget.json()).toEqual({
      conversation_id: id,
      token_budget: 1200,
      cost_budget_usd: 0.05,
      spent_tokens: 0,
      spent_cost_usd: 0,
      reserved_tokens: 0,
      reserved_cost_usd: 0,
    });
    // Absent fields stay, null clears.
    const partial = await as({ method: 'PUT', url: `/api/v1/conversations/${id}`, payload: { cost_budget_usd: null } });
    expect(partial.json()).toMatchObject({ token_budget: 1200, cost_budget_usd: null });
    expect((await as({ method: 'PUT', url: `/api/v1/conversations/${id}`, payload: { token_budget: -5 } })).statusCode).toBe(422);
    // Someone else's conversation answers like a missing one.
    const bob = await registerUser(api.app);
    expect((await asUser(api.app, bob)({ method: 'GET', url: `/api/v1/conversations/${id}/budget` })).statusCode).toBe(404);
    expect(
      (await asUser(api.app, bob)({ method: 'PUT', url: `/api/v1/conversations/${id}`, payload: { token_budget: 1 } })).statusCode,
    ).toBe(404);
    const stored = await api.db.pool.oneFirst(sql.unsafe`SELECT token_budget FROM conversations WHERE id = ${id}`);
    expect(stored).toBe(1200);
  });
});
