import { availableParallelism, totalmem } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

const NS_PER_MS = 1e6;

export type InstanceFigures = {
  readonly uptime_seconds: number;
  /** CPU time of the process over its uptime, as a share of every core (0–100). */
  readonly avg_cpu_usage: number;
  /** Resident memory as a share of the memory the process may use (its cgroup limit, or the host's). */
  readonly avg_memory_usage: number;
  readonly memory: {
    readonly rss_bytes: number;
    readonly heap_used_bytes: number;
    readonly heap_total_bytes: number;
    readonly limit_bytes: number;
  };
  readonly event_loop: {
    readonly delay_p50_ms: number;
    readonly delay_p99_ms: number;
    readonly delay_max_ms: number;
    /** Share of the time since start-up the event loop was busy (0–1). */
    readonly utilization: number;
  };
  readonly active_runs: number;
};

export type DatabaseFigures = {
  readonly reachable: boolean;
  /** Round trip of `SELECT 1` through the pool (acquiring a connection included), or null when unreachable. */
  readonly latency_ms: number | null;
  readonly pool: {
    /** The most connections the pool opens. */
    readonly size: number;
    readonly acquired: number;
    readonly idle: number;
    readonly waiting: number;
  };
};

/**
 * What this instance measures about itself and its database, for `/analytics/system`:
 * nothing here is shared between instances (each answers for itself). The event loop's
 * delay is sampled from construction on; `close` stops the sampler.
 */
export class InstanceHealth {
  readonly #pool: DatabasePool;
  readonly #activeRuns: () => number;
  readonly #delay: ReturnType<typeof monitorEventLoopDelay>;
  readonly #loopAtStart = performance.eventLoopUtilization();

  public constructor(options: { pool: DatabasePool; activeRuns: () => number }) {
    this.#pool = options.pool;
    this.#activeRuns = options.activeRuns;
    this.#delay = monitorEventLoopDelay({ resolution: 20 });
    this.#delay.enable();
  }

  public instance(): InstanceFigures {
    const uptime = process.uptime();
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const constrained = process.constrainedMemory();
    const limit = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
    const cpuShare = uptime === 0 ? 0 : (cpu.user + cpu.system) / 1e6 / (uptime * availableParallelism());
    const sampled = this.#delay.count > 0;
    return {
      uptime_seconds: uptime,
      avg_cpu_usage: Math.min(100, 100 * cpuShare),
      avg_memory_usage: Math.min(100, (100 * memory.rss) / limit),
      memory: { rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed, heap_total_bytes: memory.heapTotal, limit_bytes: limit },
      event_loop: {
        delay_p50_ms: sampled ? this.#delay.percentile(50) / NS_PER_MS : 0,
        delay_p99_ms: sampled ? this.#delay.percentile(99) / NS_PER_MS : 0,
        delay_max_ms: sampled ? this.#delay.max / NS_PER_MS : 0,
        utilization: performance.eventLoopUtilization(this.#loopAtStart).utilization,
      },
      active_runs: this.#activeRuns(),
    };
  }

  /** Probes the database; never throws (an unreachable database is a figure, not an error). */
  public async database(): Promise<DatabaseFigures> {
    const started = performance.now();
    let reachable = true;
    try {
      await this.#pool.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`);
    } catch {
      reachable = false;
    }
    const latency = performance.now() - started;
    const state = this.#pool.state();
    return {
      reachable,
      latency_ms: reachable ? latency : null,
      pool: {
        size: this.#pool.configuration.maxPoolSize ?? 0,
        acquired: state.acquiredConnections,
        idle: state.idleConnections,
        waiting: state.waitingClients,
      },
    };
  }

  public close(): void {
    this.#delay.disable();
  }
}
