import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe } from 'vitest';

/**
 * Whether the suite runs in CI (`.ci/run` sets CI=true): there everything a test needs
 * must be present, and a missing piece fails the run instead of skipping tests.
 */
export const inCi = (): boolean => process.env['CI'] === 'true' || process.env['CI'] === '1';

/** True when present, or the reason it is not (what is missing and how to get it). */
export type RequirementCheck = () => true | string;

/**
 * `describe` for tests that need something from outside the repository (a binary on
 * PATH, `../shared/`, a PostgreSQL server). When `check` finds it missing, locally the
 * tests are skipped with the reason in their title (and printed once); in CI the file
 * fails with that reason.
 *
 * @throws Error in CI when the requirement is missing.
 */
export const requireOrSkip = (what: string, check: RequirementCheck): typeof describe => {
  const result = check();
  if (result === true) {
    return describe;
  }
  const reason = `needs ${what}: ${result}`;
  if (inCi()) {
    throw new Error(`${reason} (required in CI)`);
  }
  process.stderr.write(`skipped: ${reason}\n`);
  const skipped = ((name: string, ...rest: unknown[]) =>
    (describe.skip as (name: string, ...args: unknown[]) => void)(`${name} [skipped: ${reason}]`, ...rest)) as unknown as typeof describe;
  return skipped;
};

/** A check that `binary --version` runs. */
export const binaryOnPath =
  (binary: string, install: string): RequirementCheck =>
  () => {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    return probe.error === undefined && probe.status === 0 ? true : `\`${binary}\` is not on PATH (${install})`;
  };

/** A check that a file exists (e.g. the contract under `../shared/`). */
export const fileExists =
  (path: string, hint: string): RequirementCheck =>
  () =>
    existsSync(path) ? true : `${path} does not exist (${hint})`;
