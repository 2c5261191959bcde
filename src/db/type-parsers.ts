import type { DriverTypeParser } from '@slonik/driver';
import { createTypeParserPreset } from 'slonik';

/**
 * Slonik's preset, with two changes made for an HTTP API:
 * - int8 (counts, token sums) as a JS number: these never approach 2^53, and an
 *   out-of-range value is an error rather than a silent rounding;
 * - timestamptz as an ISO-8601 string, the shape every response uses.
 */
const int8: DriverTypeParser = {
  name: 'int8',
  parse: (value: string) => {
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed)) {
      throw new RangeError(`int8 value ${value} does not fit in a JavaScript number`);
    }
    return parsed;
  },
};

const timestamptz: DriverTypeParser = {
  name: 'timestamptz',
  parse: (value: string) => new Date(Date.parse(value)).toISOString(),
};

export const createTypeParsers = (): readonly DriverTypeParser[] => {
  const overridden = new Set([int8.name, timestamptz.name]);
  return [...createTypeParserPreset().filter((parser) => !overridden.has(parser.name)), int8, timestamptz];
};
