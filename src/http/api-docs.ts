import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import packageJson from '../../package.json' with { type: 'json' };

/**
 * The OpenAPI 3.1 document, generated from the routes' schemas, at `/openapi.json`,
 * and Swagger UI at `/docs`. Shared schemas (`app.addSchema`) appear under
 * `#/components/schemas/<$id>`, the names the Chatter contract uses.
 *
 * Register before the routes: @fastify/swagger collects them as they are added.
 */
export const registerApiDocs = async (app: FastifyInstance, options: { upgradeInsecureRequests: boolean }): Promise<void> => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Chatter API', version: packageJson.version, description: packageJson.description },
      components: {
        securitySchemes: {
          // The contract's name for `Authorization: Bearer <access token or chk_ API key>`.
          CustomHTTPBearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${index}`),
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Swagger UI's own CSP, with hashes of its inline code; without HTTPS (development)
    // `upgrade-insecure-requests` would send its assets to an https:// that is not there.
    staticCSP: true,
    transformStaticCSP: (header) => (options.upgradeInsecureRequests ? header : header.replace(/\s*upgrade-insecure-requests;?/, '')),
    uiConfig: { deepLinking: true, validatorUrl: null },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
