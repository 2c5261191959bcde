import { describe, expect, it } from 'vitest';
import { frontendTypeOf, toFrontendEvent } from '../../src/events/frontend-event.js';
import type { EventRow } from '../../src/repositories/events-repository.js';

const row = (category: string, type: string, data: Record<string, unknown> = {}): EventRow => ({
  id: '01JTESTEVENT0000000000000',
  seq: 42,
  category,
  type,
  priority: 'normal',
  user_id: 'user-1',
  conversation_id: 'conv-1',
  run_id: 'run-1',
  correlation_id: 'corr-1',
  data,
  created_at: '2025-03-01T12:00:00.000Z',
});

describe('events in the frontend’s shape', () => {
  it('names every stored lifecycle type with the frontend’s dotted names', () => {
    const names = Object.fromEntries(
      [
        'workflow_started',
        'workflow_completed',
        'workflow_failed',
        'workflow_timed_out',
        'budget_exceeded',
        'workflow_interrupted',
        'workflow_cancelled',
        'model_response',
        'tool_called',
        'retry_scheduled',
        'usage_missing',
        'price_unknown',
        'run_record_rejected',
      ].map((type) => [type, frontendTypeOf({ category: 'workflow', type })]),
    );
    expect(names).toEqual({
      workflow_started: 'workflow.started',
      workflow_completed: 'workflow.completed',
      workflow_failed: 'workflow.failed',
      workflow_timed_out: 'workflow.failed',
      budget_exceeded: 'workflow.failed',
      workflow_interrupted: 'workflow.failed',
      workflow_cancelled: 'workflow.status',
      model_response: 'workflow.status',
      tool_called: 'workflow.status',
      retry_scheduled: 'workflow.status',
      usage_missing: 'system.alert',
      price_unknown: 'system.alert',
      run_record_rejected: 'system.alert',
    });
  });

  it('prefixes other events with their category', () => {
    expect(frontendTypeOf({ category: 'security', type: 'login_failed' })).toBe('security.login_failed');
    expect(frontendTypeOf({ category: 'admin', type: 'price_added' })).toBe('admin.price_added');
    expect(frontendTypeOf({ category: 'system', type: 'test_event' })).toBe('system.alert');
    expect(frontendTypeOf({ category: 'workflow', type: 'something_new' })).toBe('workflow.something_new');
  });

  it('keeps the stored data, adds the frontend’s fields and puts the row’s ids in metadata', () => {
    expect(toFrontendEvent(row('workflow', 'workflow_timed_out', { 'chatter.run.terminal_reason': 'run_timeout' }))).toEqual({
      id: '01JTESTEVENT0000000000000',
      type: 'workflow.failed',
      timestamp: '2025-03-01T12:00:00.000Z',
      user_id: 'user-1',
      data: {
        'chatter.run.terminal_reason': 'run_timeout',
        workflow_id: 'run-1',
        status: 'timedOut',
        error_code: 'timedOut',
        error_message: 'run_timeout',
        failed_at: '2025-03-01T12:00:00.000Z',
      },
      metadata: {
        seq: 42,
        category: 'workflow',
        priority: 'normal',
        event_type: 'workflow_timed_out',
        run_id: 'run-1',
        conversation_id: 'conv-1',
        correlation_id: 'corr-1',
        source_system: 'chatter',
      },
    });
    expect(toFrontendEvent(row('workflow', 'workflow_cancelled')).data).toMatchObject({ status: 'cancelled', workflow_id: 'run-1' });
    expect(toFrontendEvent(row('workflow', 'price_unknown', { 'gen_ai.response.model': 'mystery-1' })).data).toMatchObject({
      severity: 'warning',
      message: expect.stringContaining('mystery-1'),
    });
  });

  it('leaves user_id out of an event of no user', () => {
    const event = toFrontendEvent({ ...row('security', 'access_denied'), user_id: null });
    expect('user_id' in event).toBe(false);
    expect(event.type).toBe('security.access_denied');
  });
});
