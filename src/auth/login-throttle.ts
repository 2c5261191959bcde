import { SlidingWindowCounter } from './sliding-window.js';

export type LoginThrottleOptions = {
  readonly maxFailuresPerAccount: number;
  readonly maxFailuresPerIp: number;
  readonly windowMs: number;
  readonly now?: () => number;
};

export type LoginBlock = { readonly blocked: true; readonly scope: 'ip' | 'account'; readonly retryAfterMs: number };

/** An attempt under way, counted as a failure until it `succeeded()`. */
export type LoginAttempt = { readonly blocked: false; readonly succeeded: () => void };

/**
 * Failed-login limits: N failures per account and M per client address inside a
 * sliding window. A blocked attempt is refused before the password is checked, so a
 * locked account costs no hashing. Each attempt counts as a failure from the moment it
 * starts (check and count happen together, synchronously), so a burst of concurrent
 * guesses cannot all pass the check before the first one fails. The account key is
 * the user id when the account exists, else the name tried (probing unknown names is
 * limited too).
 */
export class LoginThrottle {
  readonly #options: LoginThrottleOptions;
  readonly #byAccount: SlidingWindowCounter;
  readonly #byIp: SlidingWindowCounter;

  public constructor(options: LoginThrottleOptions) {
    this.#options = options;
    const window = { windowMs: options.windowMs, ...(options.now === undefined ? {} : { now: options.now }) };
    this.#byAccount = new SlidingWindowCounter(window);
    this.#byIp = new SlidingWindowCounter(window);
  }

  /** The block on this client address, if any (a cheap check before looking the account up). */
  public checkIp(ip: string): LoginBlock | null {
    const retryAfterMs = this.#byIp.retryAfterMs(ip, this.#options.maxFailuresPerIp);
    return retryAfterMs > 0 ? { blocked: true, scope: 'ip', retryAfterMs } : null;
  }

  /** Refuses the attempt if the address or the account is blocked, else counts it as a failure until it succeeds. */
  public begin(ip: string, account: string): LoginBlock | LoginAttempt {
    const ipBlock = this.checkIp(ip);
    if (ipBlock !== null) {
      return ipBlock;
    }
    const accountRetryAfterMs = this.#byAccount.retryAfterMs(account, this.#options.maxFailuresPerAccount);
    if (accountRetryAfterMs > 0) {
      return { blocked: true, scope: 'account', retryAfterMs: accountRetryAfterMs };
    }
    const ipHit = this.#byIp.hit(ip);
    this.#byAccount.hit(account);
    return {
      blocked: false,
      succeeded: () => {
        // A success clears its account's failures, but only takes back its own hit on the
        // address: one valid account must not unlock guessing at others from there.
        this.#byIp.unhit(ip, ipHit);
        this.#byAccount.reset(account);
      },
    };
  }
}
