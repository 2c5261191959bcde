import { tool } from '@langchain/core/tools';
import { z } from 'zod';

/** The requested time zone is not one the runtime's time-zone database knows. */
export class UnknownTimezoneError extends Error {
  override readonly name = 'UnknownTimezoneError';
  constructor(readonly timezone: string) {
    super(`Unknown time zone ${JSON.stringify(timezone)}: use an IANA name such as "UTC", "Europe/Paris" or "America/New_York"`);
  }
}

export type CurrentTime = {
  /** The instant in UTC, ISO 8601. */
  utc: string;
  timezone: string;
  /** Wall-clock time in `timezone`, ISO 8601 with its UTC offset. */
  local: string;
  weekday: string;
};

function formatterFor(timezone: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'long',
      timeZoneName: 'longOffset',
    });
  } catch (error) {
    if (error instanceof RangeError) throw new UnknownTimezoneError(timezone);
    throw error;
  }
}

/**
 * Describes the instant `at` in `timezone`.
 * @throws {UnknownTimezoneError} when the zone is not a valid IANA name.
 */
export function describeTime(at: Date, timezone: string): CurrentTime {
  const formatter = formatterFor(timezone);
  const parts = Object.fromEntries(formatter.formatToParts(at).map((part) => [part.type, part.value]));
  // longOffset reads "GMT+02:00", or plain "GMT" at offset zero.
  const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  return {
    utc: at.toISOString(),
    // The name as asked: ICU would canonicalise some (Asia/Kolkata → Asia/Calcutta).
    timezone,
    local: `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`,
    weekday: parts.weekday ?? '',
  };
}

/**
 * The `current_time` tool. The clock is injected so runs and tests are deterministic.
 */
export function createCurrentTimeTool({ now }: { now: () => Date }) {
  return tool(async ({ timezone }) => JSON.stringify(describeTime(now(), timezone ?? 'UTC')), {
    name: 'current_time',
    description:
      'Returns the current date and time as JSON ({ utc, timezone, local, weekday }). ' +
      'Pass an IANA time zone (e.g. "Europe/Paris") for local wall-clock time; defaults to UTC.',
    schema: z.object({
      timezone: z.string().optional().describe('IANA time zone name, e.g. "America/New_York". Defaults to "UTC".'),
    }),
  });
}
