import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A repository file's text. */
export const readRepoFile = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');

/** A YAML file of the repository, parsed (merge keys `<<:` resolved, as Compose does). */
export const parseYamlFile = <T>(path: string): T => parse(readRepoFile(path), { merge: true }) as T;

export const repoPathExists = (path: string): boolean => existsSync(join(REPO_ROOT, path));
export const isDirectory = (path: string): boolean => repoPathExists(path) && statSync(join(REPO_ROOT, path)).isDirectory();

export type ComposeService = {
  readonly image?: string;
  readonly build?: string | { readonly context?: string; readonly dockerfile?: string };
  readonly volumes?: readonly (string | { readonly type?: string; readonly source?: string; readonly target?: string })[];
  readonly env_file?: string | readonly string[];
  readonly environment?: Readonly<Record<string, string | number | boolean | null>> | readonly string[];
  readonly entrypoint?: string | readonly string[];
  readonly command?: string | readonly string[];
  readonly healthcheck?: { readonly test?: unknown; readonly disable?: boolean };
  readonly restart?: string;
  readonly ports?: readonly (string | number)[];
};
export type ComposeFile = {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly volumes?: Readonly<Record<string, unknown>>;
};

/** A bind mount: repository path (relative to the compose file) → container path. */
export type BindMount = { readonly source: string; readonly target: string };

/** The bind mounts of a service (named volumes are left out). */
export const bindMounts = (service: ComposeService): BindMount[] =>
  (service.volumes ?? []).flatMap((volume): BindMount[] => {
    if (typeof volume === 'string') {
      const [source = '', target = ''] = volume.split(':');
      return source.startsWith('.') || source.startsWith('/') ? [{ source: posix.normalize(source), target }] : [];
    }
    return volume.type === 'bind' && volume.source !== undefined && volume.target !== undefined
      ? [{ source: posix.normalize(volume.source), target: volume.target }]
      : [];
  });

/** The repository path a container path comes from through a bind mount, if any. */
export const repoPathOf = (containerPath: string, mounts: readonly BindMount[]): string | undefined => {
  for (const mount of mounts) {
    if (containerPath === mount.target || containerPath.startsWith(`${mount.target}/`)) {
      return posix.join(mount.source, containerPath.slice(mount.target.length));
    }
  }
  return undefined;
};

/** A service's environment as a map (list or map syntax). */
export const environmentOf = (service: ComposeService): Record<string, string> => {
  const environment = service.environment ?? {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      (environment as readonly string[]).map((entry) => {
        const index = entry.indexOf('=');
        return index === -1 ? [entry, ''] : [entry.slice(0, index), entry.slice(index + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(environment as Record<string, string | number | boolean | null>).map(([key, value]) => [
      key,
      value === null ? '' : String(value),
    ]),
  );
};

/** `${VAR:-default}` / `${VAR-default}` / `${VAR}` interpolated with the defaults (variables unset). */
export const withComposeDefaults = (value: string): string =>
  value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _name: string, fallback?: string) => fallback ?? '').replace(/\$\$/g, '$');

/** Every `${VAR:-default}` of a text with a non-empty default. */
export const composeDefaults = (text: string): { name: string; value: string }[] =>
  [...text.matchAll(/\$\{(\w+):?-([^}]+)\}/g)].map((match) => ({ name: match[1] ?? '', value: match[2] ?? '' }));

/** COPY/ADD sources of a Dockerfile that come from the build context (not `--from`). */
export const dockerfileContextSources = (dockerfile: string): string[] =>
  dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^(COPY|ADD)\s/i.test(line) && !/--from=/i.test(line))
    .flatMap((line) => {
      const words = line
        .split(/\s+/)
        .slice(1)
        .filter((word) => !word.startsWith('--'));
      return words.slice(0, -1);
    });

/**
 * Whether `path` is sent to the Docker build given .dockerignore `patterns` (the last
 * matching pattern wins; `!` re-includes; a pattern matching a parent matches the path).
 */
export const includedInContext = (path: string, patterns: readonly string[]): boolean => {
  const toRegex = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/\/+$/, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .split('**')
        .map((part) => part.replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
        .join('.*')}(/.*)?$`,
    );
  let included = true;
  const normalized = posix.normalize(path).replace(/^\.\//, '').replace(/\/+$/, '');
  for (const line of patterns) {
    const pattern = line.trim();
    if (pattern === '' || pattern.startsWith('#')) continue;
    const negated = pattern.startsWith('!');
    if (toRegex(negated ? pattern.slice(1) : pattern).test(normalized)) {
      included = negated;
    }
  }
  return included;
};
