import type { FastifyPluginAsync } from 'fastify';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { describeProviders } from '../profiles/provider-catalog.js';
import { loadPrices } from '../repositories/prices-repository.js';
import type { Services } from '../services.js';

/** `GET /api/v1/profiles/providers/available`: the providers, their models and this service's prices. */
export const providerCatalogRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.addHook('onRequest', app.authenticate);

  app.get(
    '/providers/available',
    {
      schema: {
        tags: ['Profiles'],
        summary: 'Get Available Providers',
        description:
          'Every provider this service can call: whether it is configured (credentials set), its default model, the models its price list names, and the USD per 1M tokens runs are costed with now.',
        operationId: 'get_available_providers_api_v1_profiles_providers_available_get',
        security: bearerSecurity,
        response: { 200: { $ref: 'AvailableProvidersResponse#' }, ...errorResponses(401) },
      },
    },
    async () => {
      const { shipped, operator } = await loadPrices(app.db.pool);
      return describeProviders({
        providers: services.providers.listProviders(),
        priceRows: [...operator, ...shipped],
        prices: services.prices,
        at: new Date(),
      });
    },
  );
};
