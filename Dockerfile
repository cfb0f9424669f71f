# The broker image: compiled JavaScript on Node 20 (Debian 12, whose glibc the bundled uWebSockets.js build
# needs). Build: docker build -t logbroker . ; run one broker:
#   docker run --init -p 8080:8080 -v broker-data:/data logbroker
# or three with Prometheus and Grafana: docker compose up -d (docker-compose.yml).
# - Runs as the unprivileged `node` user; the data volume /data is owned by it.
# - Signals: the entrypoint is exec form, so node is the process `docker stop` signals; the broker handles
#   SIGTERM itself (drain, fsync, leave the cluster). Run with --init (compose: `init: true`) so that a tiny
#   init is PID 1: it forwards signals and reaps zombies, which node as PID 1 would not do.
# - HEALTHCHECK: bin/healthcheck.mjs asks GET /health, which answers 200 only while the broker serves.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production BROKER_COMPILED=1 BROKER_DATA_DIR=/data UV_THREADPOOL_SIZE=16 MALLOC_ARENA_MAX=2
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY ui ./ui
RUN mkdir -p /data && chown node:node /data
VOLUME /data
EXPOSE 8080 7946/tcp 7946/udp
USER node
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "bin/healthcheck.mjs"]
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=30", "--no-allocation-site-pretenuring", "bin/broker.mjs"]
CMD ["start", "--host", "0.0.0.0"]
