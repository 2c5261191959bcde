import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/auth/login-throttle.js';
import { SlidingWindowCounter } from '../../src/auth/sliding-window.js';

describe('SlidingWindowCounter', () => {
  it('counts events inside the window only and says when the next one is allowed', () => {
    let now = 0;
    const counter = new SlidingWindowCounter({ windowMs: 1000, now: () => now });
    counter.hit('k');
    now = 400;
    counter.hit('k');
    now = 600;
    counter.hit('k');
    expect(counter.count('k')).toBe(3);
    expect(counter.retryAfterMs('k', 4)).toBe(0);
    // Limit 3: the oldest event (t=0) leaves the window at t=1000.
    expect(counter.retryAfterMs('k', 3)).toBe(400);
    now = 1000;
    expect(counter.count('k')).toBe(2);
    expect(counter.retryAfterMs('k', 3)).toBe(0);
    now = 2000;
    expect(counter.count('k')).toBe(0);
  });

  it('takes back one event with unhit and forgets a key with reset', () => {
    let now = 0;
    const counter = new SlidingWindowCounter({ windowMs: 1000, now: () => now });
    const at = counter.hit('k');
    now = 1;
    counter.hit('k');
    counter.unhit('k', at);
    expect(counter.count('k')).toBe(1);
    counter.reset('k');
    expect(counter.count('k')).toBe(0);
  });

  it('keeps at most maxKeys keys, dropping the least recently active', () => {
    const counter = new SlidingWindowCounter({ windowMs: 60_000, maxKeys: 10 });
    for (let index = 0; index < 25; index += 1) {
      counter.hit(`key-${index}`);
    }
    expect(counter.count('key-24')).toBe(1);
    expect(counter.count('key-0')).toBe(0);
  });
});

describe('LoginThrottle', () => {
  it('blocks the account at its limit and the address at its own', () => {
    const throttle = new LoginThrottle({ maxFailuresPerAccount: 2, maxFailuresPerIp: 3, windowMs: 1000, now: () => 0 });
    expect(throttle.begin('ip-1', 'alice').blocked).toBe(false);
    expect(throttle.begin('ip-1', 'alice').blocked).toBe(false);
    expect(throttle.begin('ip-2', 'alice')).toMatchObject({ blocked: true, scope: 'account' });
    expect(throttle.begin('ip-1', 'bob').blocked).toBe(false);
    expect(throttle.begin('ip-1', 'carol')).toMatchObject({ blocked: true, scope: 'ip' });
    expect(throttle.checkIp('ip-1')).toMatchObject({ scope: 'ip', retryAfterMs: 1000 });
    expect(throttle.checkIp('ip-2')).toBeNull();
  });

  it('does not count a successful attempt against the address', () => {
    const throttle = new LoginThrottle({ maxFailuresPerAccount: 5, maxFailuresPerIp: 2, windowMs: 1000, now: () => 0 });
    for (let index = 0; index < 10; index += 1) {
      const attempt = throttle.begin('office', `user-${index}`);
      expect(attempt.blocked).toBe(false);
      if (!attempt.blocked) {
        attempt.succeeded();
      }
    }
    expect(throttle.checkIp('office')).toBeNull();
  });
});
