/** The part of autocannon's programmatic API the HTTP benchmarks use (the package ships no types). */
declare module 'autocannon' {
  type Percentiles = {
    readonly average: number;
    readonly mean: number;
    readonly stddev: number;
    readonly min: number;
    readonly max: number;
    readonly total: number;
    readonly p50: number;
    readonly p75: number;
    readonly p90: number;
    readonly p97_5: number;
    readonly p99: number;
    readonly p99_9: number;
  };

  export type AutocannonOptions = {
    readonly url: string;
    readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
    readonly connections?: number;
    readonly duration?: number;
    readonly amount?: number;
    readonly timeout?: number;
    readonly pipelining?: number;
    readonly headers?: Record<string, string>;
    readonly body?: string;
  };

  export type AutocannonResult = {
    readonly latency: Percentiles;
    readonly requests: Percentiles & { readonly sent: number };
    readonly throughput: Percentiles;
    readonly errors: number;
    readonly timeouts: number;
    readonly non2xx: number;
    readonly resets: number;
    readonly duration: number;
    readonly '2xx': number;
    readonly statusCodeStats: Record<string, { readonly count: number }>;
  };

  export type Instance = PromiseLike<AutocannonResult> & {
    on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): Instance;
    stop(): void;
  };

  const autocannon: (options: AutocannonOptions) => Instance;
  export default autocannon;
}
