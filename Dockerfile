# syntax=docker/dockerfile:1
# Maestro: one image for the API (default command) and the worker (`node dist/src/cli/main.js worker`).
# Built in two stages: the build stage compiles the TypeScript and prebuilds the workflow bundle
# (npm run build); the runtime image has production dependencies and dist/ only (no sources, no tsx).

##### Build #####
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY migrations ./migrations
COPY src ./src
RUN npm run build

##### Production dependencies #####
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts: npm 11 runs them only for the packages listed in package.json "allowScripts";
# the npm 10 in this image runs all of them. Either way the runtime packages are set up.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

##### Runtime #####
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The node user (uid 1000) comes with the base image; the app files stay owned by root, read-only to it.
USER node
EXPOSE 3000
# No curl in the slim image: ask node. Only meaningful for the API; compose disables it for the worker.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node runs as PID 1 and Maestro handles SIGTERM itself (API, worker, connections closed in order).
# Same as `npm start`, without npm in between.
CMD ["node", "dist/src/cli/main.js", "api"]
