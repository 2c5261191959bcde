# syntax=docker/dockerfile:1
# Chatter API image.
#
#   deps     production node_modules only (npm ci --omit=dev)
#   build    every dependency + the TypeScript sources compiled to JavaScript by tsc
#   runtime  Node 24 slim, non-root: compiled code, production node_modules, migrations
#
# The runtime runs plain `node`: no tsx, TypeScript or esbuild in the image, and no Node
# download (the `node` devDependency that pins npm scripts to Node 24 is a dev tool;
# the image's own Node 24 runs the service). Build: `docker build -t chatter .`
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install scripts in the dependency tree are dev tools'
# (the `node` binary download and esbuild's self-check).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY machines ./machines
COPY otel ./otel
COPY src ./src
# rootDir "." keeps the folder layout in dist/, so the paths the code resolves from its
# own location (../../migrations/, ../package.json) hold in the runtime image too.
# noEmitOnError: a type error fails the image build instead of shipping.
RUN printf '%s\n' \
      '{"extends":"./tsconfig.json","include":["src","otel","machines"],' \
      '"compilerOptions":{"noEmit":false,"noEmitOnError":true,"outDir":"dist","rootDir":".","sourceMap":true}}' \
      > tsconfig.build.json \
 && node_modules/.bin/tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    CHATTER_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    CHATTER_DATA_DIR=/var/lib/chatter
WORKDIR /app
# Code and dependencies belong to root and are read-only for the service user; the only
# writable place is CHATTER_DATA_DIR (embedded database without DATABASE_URL, and the
# telemetry spool that keeps run records while PostgreSQL is unreachable).
RUN mkdir -p /var/lib/chatter && chown node:node /var/lib/chatter
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY migrations ./migrations
COPY --from=build /app/dist/machines ./machines
COPY --from=build /app/dist/otel ./otel
COPY --from=build /app/dist/src ./src
USER node
EXPOSE 8000
VOLUME ["/var/lib/chatter"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The service handles SIGTERM itself (drains runs, flushes telemetry, then exits).
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "src/server.js"]
