import { ulid } from '../ids.js';
import type { LimitStore, WindowSpec } from '../limits/limit-store.js';

export type LoginThrottleOptions = {
  readonly store: LimitStore;
  /** Failures on one account (from anywhere) before its back-off starts. */
  readonly maxFailuresPerAccount: number;
  /** Failures from one address (on any accounts) before the address is refused. */
  readonly maxFailuresPerIp: number;
  readonly windowMs: number;
  /** The first back-off delay; it doubles with each further failure on the account. */
  readonly backoffBaseMs?: number;
  readonly now?: () => number;
};

export type LoginBlock = { readonly blocked: true; readonly scope: 'ip' | 'account'; readonly retryAfterMs: number };

/** An attempt under way, counted as a failure until it `succeeded()`. */
export type LoginAttempt = { readonly blocked: false; readonly succeeded: () => Promise<void> };

/** Kept above the threshold so the back-off exponent can grow until it reaches the window. */
const BACKOFF_STEPS = 24;

/**
 * Failed-login limits that a stranger cannot turn against a user (OWASP Authentication
 * Cheat Sheet: lockout lets anyone lock anyone out; throttle instead):
 *
 * - per address: `maxFailuresPerIp` failures (on any accounts) in the window, then that
 *   address is refused (429) until they age out;
 * - per account: after `maxFailuresPerAccount` failures on an account (from anywhere),
 *   an address that has itself failed on that account must wait an exponential delay
 *   since its last failure (base × 2^(failures − threshold), capped at the window)
 *   before its next try. An address with no failure on the account is never held back
 *   by the account's count: the right password from a new address works while the
 *   account is under attack.
 *
 * Counts live in the shared limit store (every instance sees them). Each attempt counts
 * as a failure from the moment it starts, in one atomic hit, so a concurrent burst sees
 * itself; a refused attempt is taken back, a success clears the account's failures and
 * takes back its own hit on the address.
 */
export class LoginThrottle {
  readonly #options: LoginThrottleOptions;
  readonly #now: () => number;
  readonly #baseMs: number;

  public constructor(options: LoginThrottleOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#baseMs = options.backoffBaseMs ?? 1000;
  }

  #ipWindow(ip: string): WindowSpec {
    return { key: `login:ip:${ip}`, windowMs: this.#options.windowMs, limit: this.#options.maxFailuresPerIp };
  }

  /** The block on this client address, if any (a cheap check before looking the account up). */
  public async checkIp(ip: string): Promise<LoginBlock | null> {
    const state = await this.#options.store.peek(this.#ipWindow(ip), this.#now());
    return state.retryAfterMs > 0 ? { blocked: true, scope: 'ip', retryAfterMs: state.retryAfterMs } : null;
  }

  /**
   * Counts the attempt as a failure and answers whether it may go on. The account key
   * is the user id when the account exists, else the name tried.
   */
  public async begin(ip: string, account: string): Promise<LoginBlock | LoginAttempt> {
    const { store, maxFailuresPerAccount, windowMs } = this.#options;
    const event = { id: ulid(), at: this.#now() };
    const accountLimit = maxFailuresPerAccount + BACKOFF_STEPS;
    const ipWindow = this.#ipWindow(ip);
    const accountWindow = { key: `login:account:${account}`, windowMs, limit: accountLimit };
    const pairWindow = { key: `login:pair:${account}:${ip}`, windowMs, limit: accountLimit };
    const keys = [ipWindow.key, accountWindow.key, pairWindow.key];
    const [byIp, byAccount, byPair] = await store.hit([ipWindow, accountWindow, pairWindow], event);
    if (byIp === undefined || byAccount === undefined || byPair === undefined) {
      throw new Error('limit store answered fewer windows than asked');
    }

    const refuse = async (scope: LoginBlock['scope'], retryAfterMs: number): Promise<LoginBlock> => {
      await store.unhit(keys, event);
      return { blocked: true, scope, retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) };
    };
    if (byIp.retryAfterMs > 0) {
      return refuse('ip', byIp.retryAfterMs);
    }
    const accountFailures = byAccount.count - 1;
    const ownFailures = byPair.count - 1;
    if (ownFailures > 0 && accountFailures >= maxFailuresPerAccount && byPair.previousAt !== null) {
      const delay = Math.min(windowMs, this.#baseMs * 2 ** Math.min(30, accountFailures - maxFailuresPerAccount));
      const readyAt = byPair.previousAt + delay;
      if (event.at < readyAt) {
        return refuse('account', readyAt - event.at);
      }
    }
    return {
      blocked: false,
      succeeded: async () => {
        // One valid account must not unlock guessing at others from this address: only
        // this attempt's own hit on the address is taken back.
        await store.unhit([ipWindow.key], event);
        await store.reset([accountWindow.key, pairWindow.key]);
      },
    };
  }
}

export type RegisterThrottleOptions = {
  readonly store: LimitStore;
  readonly maxPerIp: number;
  readonly maxPerEmail: number;
  readonly windowMs: number;
  readonly now?: () => number;
};

/**
 * Registration attempts per client address and per email (whatever their outcome), so
 * that neither mass sign-ups nor probing which emails are taken (409) can go fast.
 */
export class RegisterThrottle {
  readonly #options: RegisterThrottleOptions;
  readonly #now: () => number;

  public constructor(options: RegisterThrottleOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Counts the attempt; a refused one is not counted and says which limit refused it. */
  public async attempt(
    ip: string,
    email: string,
  ): Promise<{ blocked: false } | { blocked: true; scope: 'ip' | 'email'; retryAfterMs: number }> {
    const { store, maxPerIp, maxPerEmail, windowMs } = this.#options;
    const event = { id: ulid(), at: this.#now() };
    const windows = [
      { key: `register:ip:${ip}`, windowMs, limit: maxPerIp },
      { key: `register:email:${email.normalize('NFKC').toLowerCase()}`, windowMs, limit: maxPerEmail },
    ];
    const [byIp, byEmail] = await store.hit(windows, event);
    const over =
      byIp !== undefined && byIp.retryAfterMs > 0
        ? ('ip' as const)
        : byEmail !== undefined && byEmail.retryAfterMs > 0
          ? ('email' as const)
          : null;
    if (over === null) return { blocked: false };
    await store.unhit(
      windows.map((window) => window.key),
      event,
    );
    return { blocked: true, scope: over, retryAfterMs: Math.max(byIp?.retryAfterMs ?? 0, byEmail?.retryAfterMs ?? 0) };
  }
}
