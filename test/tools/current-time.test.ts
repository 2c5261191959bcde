import { describe, expect, it } from 'vitest';
import { UnknownTimezoneError, createCurrentTimeTool, describeTime } from '../../src/tools/current-time.js';

// 2024-03-31 00:30 UTC: Paris switches to summer time at 01:00 UTC that day.
const instant = new Date('2024-03-31T00:30:00.000Z');

describe('current_time tool', () => {
  it('reads the injected clock on every call', async () => {
    let now = instant;
    const currentTime = createCurrentTimeTool({ now: () => now });
    expect(currentTime.name).toBe('current_time');
    const first = JSON.parse(await currentTime.invoke({}));
    now = new Date('2025-01-01T12:00:00.000Z');
    const second = JSON.parse(await currentTime.invoke({}));
    expect(first).toEqual({ utc: '2024-03-31T00:30:00.000Z', timezone: 'UTC', local: '2024-03-31T00:30:00+00:00', weekday: 'Sunday' });
    expect(second.utc).toBe('2025-01-01T12:00:00.000Z');
  });

  it('gives the wall-clock time in the requested time zone', async () => {
    const currentTime = createCurrentTimeTool({ now: () => instant });
    expect(JSON.parse(await currentTime.invoke({ timezone: 'America/New_York' }))).toEqual({
      utc: '2024-03-31T00:30:00.000Z',
      timezone: 'America/New_York',
      local: '2024-03-30T20:30:00-04:00',
      weekday: 'Saturday',
    });
  });

  it.each([
    ['Europe/Paris', '2024-03-31T00:30:00.000Z', '2024-03-31T01:30:00+01:00'],
    ['Europe/Paris', '2024-03-31T01:30:00.000Z', '2024-03-31T03:30:00+02:00'],
    ['Asia/Kolkata', '2024-03-31T00:30:00.000Z', '2024-03-31T06:00:00+05:30'],
    ['America/St_Johns', '2024-03-31T00:30:00.000Z', '2024-03-30T22:00:00-02:30'],
    ['Pacific/Kiritimati', '2024-03-31T23:30:00.000Z', '2024-04-01T13:30:00+14:00'],
  ])('applies the offset of %s at %s', (timezone, at, local) => {
    expect(describeTime(new Date(at), timezone).local).toBe(local);
  });

  it('prints midnight as 00, not 24', () => {
    expect(describeTime(new Date('2024-06-01T00:00:00.000Z'), 'UTC').local).toBe('2024-06-01T00:00:00+00:00');
  });

  it.each(['Mars/Olympus_Mons', 'Europe/Pariss', 'not a zone'])('refuses the unknown time zone %j with a clear error', async (timezone) => {
    const currentTime = createCurrentTimeTool({ now: () => instant });
    await expect(currentTime.invoke({ timezone })).rejects.toThrow(UnknownTimezoneError);
    await expect(currentTime.invoke({ timezone })).rejects.toThrow(`Unknown time zone ${JSON.stringify(timezone)}: use an IANA name`);
  });
});
