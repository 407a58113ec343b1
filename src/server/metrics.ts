// GET /metrics: Prometheus text exposition (version 0.0.4) of the server's counters and the
// runtime's cache and queue state, read at scrape time.
import type { Runtime } from '../engine/runtime.ts';
import type { CompletionUsage } from './completion.ts';

/** Window over which `amnesia_generation_tokens_per_second` averages. */
const RATE_WINDOW_MS = 10_000;

export class Metrics {
  private readonly byStatus = new Map<string, number>();
  private promptTokens = 0;
  private completionTokens = 0;
  private cachedTokens = 0;
  private readonly recent: Array<{ at: number; tokens: number }> = [];

  constructor(private readonly runtime: Runtime) {}

  request(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.byStatus.set(key, (this.byStatus.get(key) ?? 0) + 1);
  }

  completion(usage: CompletionUsage): void {
    this.promptTokens += usage.prompt_tokens;
    this.completionTokens += usage.completion_tokens;
    this.cachedTokens += usage.prompt_tokens_details.cached_tokens;
    this.recent.push({ at: Date.now(), tokens: usage.completion_tokens });
  }

  private tokensPerSecond(): number {
    const since = Date.now() - RATE_WINDOW_MS;
    while (this.recent.length > 0 && this.recent[0]!.at < since) this.recent.shift();
    return this.recent.reduce((n, r) => n + r.tokens, 0) / (RATE_WINDOW_MS / 1000);
  }

  render(): string {
    const cache = this.runtime.cacheStats();
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels ? `{${labels}}` : ''} ${value}`);
    };
    metric('amnesia_http_requests_total', 'counter', 'HTTP requests answered, by route and status.', [...this.byStatus].sort());
    metric('amnesia_prompt_tokens_total', 'counter', 'Prompt tokens of completed chat completions.', [['', this.promptTokens]]);
    metric('amnesia_completion_tokens_total', 'counter', 'Completion tokens of completed chat completions.', [['', this.completionTokens]]);
    metric('amnesia_cached_prompt_tokens_total', 'counter', 'Prompt tokens reused from the prefix cache.', [['', this.cachedTokens]]);
    metric('amnesia_prefix_cache_lookups_total', 'counter', 'Prefix cache lookups.', [['', cache.lookups]]);
    metric('amnesia_prefix_cache_hits_total', 'counter', 'Prefix cache lookups that reused KV.', [['', cache.hits]]);
    metric('amnesia_prefix_cache_evictions_total', 'counter', 'Prefix cache entries evicted.', [['', cache.evictions]]);
    metric('amnesia_prefix_cache_entries', 'gauge', 'Entries in the prefix cache.', [['', cache.entries]]);
    metric('amnesia_prefix_cache_bytes', 'gauge', 'KV bytes held by the prefix cache.', [['', cache.bytes]]);
    metric('amnesia_prefix_cache_budget_bytes', 'gauge', 'Prefix cache budget in bytes.', [['', cache.budgetBytes]]);
    metric('amnesia_queue_depth', 'gauge', 'Requests waiting to start generating.', [['', this.runtime.queueDepth]]);
    metric('amnesia_active_requests', 'gauge', 'Requests generating now.', [['', this.runtime.activeRequests]]);
    metric('amnesia_generation_tokens_per_second', 'gauge', `Completion tokens per second over the last ${RATE_WINDOW_MS / 1000} s.`, [
      ['', this.tokensPerSecond()],
    ]);
    return `${lines.join('\n')}\n`;
  }
}
