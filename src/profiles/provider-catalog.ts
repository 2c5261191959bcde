import type { PriceRow } from '../providers/pricing.js';
import type { ProviderInfo, ProviderName } from '../providers/provider-registry.js';
import type { PriceBook } from '../runtime/price-book.js';

const DISPLAY_NAMES: Readonly<Record<ProviderName, string>> = {
  local: 'Local model (built in)',
  openai: 'OpenAI',
  anthropic: 'Anthropic',
};

/** What each provider adapter of this service does (src/providers). */
const FEATURES: Readonly<Record<ProviderName, readonly string[]>> = {
  local: ['chat', 'streaming', 'tools', 'usage'],
  openai: ['chat', 'streaming', 'tools', 'usage', 'cache_read', 'reasoning_tokens'],
  anthropic: ['chat', 'streaming', 'tools', 'usage', 'cache_read', 'cache_write'],
};

export type CatalogPrice = {
  price_id: string;
  input_per_mtok: number;
  cache_read_per_mtok: number;
  cache_write_per_mtok: number;
  output_per_mtok: number;
  valid_from: string;
};

const priceOf = (row: PriceRow | null): CatalogPrice | null =>
  row === null
    ? null
    : {
        price_id: row.id,
        input_per_mtok: row.inputPerMTok,
        cache_read_per_mtok: row.cacheReadPerMTok,
        cache_write_per_mtok: row.cacheWritePerMTok,
        output_per_mtok: row.outputPerMTok,
        valid_from: row.validFrom,
      };

/**
 * The providers this service knows, whether each is configured, and their models: the
 * provider's default model and every model its price rows name exactly (a glob row such
 * as `gpt-4o-20*` prices dated snapshots, not a model of its own), each priced by the
 * same price book that costs the runs, at `at`.
 */
export const describeProviders = (options: {
  readonly providers: readonly ProviderInfo[];
  readonly priceRows: readonly PriceRow[];
  readonly prices: PriceBook;
  readonly at: Date;
}) => {
  const { providers, priceRows, prices, at } = options;
  const entries = providers.map((provider) => {
    const named = priceRows
      .filter((row) => row.provider === provider.name && !row.modelPattern.includes('*'))
      .map((row) => row.modelPattern);
    const models = [...new Set([provider.defaultModel, ...named.sort()])].map((model) => ({
      name: model,
      is_default: model === provider.defaultModel,
      price: priceOf(prices.find(provider.name, model, at)),
    }));
    return [
      provider.name,
      {
        name: provider.name,
        display_name: DISPLAY_NAMES[provider.name],
        configured: provider.configured,
        is_default: provider.isDefault,
        default_model: provider.defaultModel,
        models,
        supported_features: [...FEATURES[provider.name]],
      },
    ] as const;
  });
  return {
    providers: Object.fromEntries(entries),
    total_providers: entries.length,
    supported_features: Object.fromEntries(providers.map((provider) => [provider.name, [...FEATURES[provider.name]]])),
  };
};
